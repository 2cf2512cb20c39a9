"""Sustained load on `modernbert-glue serve`: 10,000 requests from 32 concurrent clients, mixed sizes and routes,
a tenth of them malformed. Pass: 0 errors on the well-formed requests, no 5xx on the malformed ones, the server
alive at the end, and its resident memory growing < 10% from the first to the last thousand requests.

Without --model it first builds what it serves: all-MiniLM-L6-v2 fine-tuned briefly on SST-2 (cpu-sbert preset,
256 sentences, one epoch: the weights' quality does not matter for load) and its int8 ONNX export, served with
the onnx backend (the CPU serving default in the README).

    .venv/bin/python benchmarks/load_serve.py --output benchmarks/results/load-serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SST2_DIR, load, sentences  # benchmarks/common.py, this script's sibling

from modernbert_glue.inference.launch import start_server
from modernbert_glue.outputs import write_json
from modernbert_glue.provenance import provenance

MALFORMED = [  # (route, body): every one must get a 4xx
    ("/v1/classify", b'{"texts": ['),
    ("/v1/classify", b'{"texts": []}'),
    ("/v1/classify", json.dumps({"texts": ["x"] * 33}).encode()),
    ("/v1/classify", b'{"texts": [1, 2]}'),
    ("/v1/classify", json.dumps({"texts": ["y" * 2001]}).encode()),
    ("/predict", b'{"inputs": []}'),
    ("/predict", b'{"inputs": [["a"], ["b", "c", "d"]]}'),
    ("/predict", b'{"input": "a"}'),
    ("/predict", b"\xff\xfe not json"),
    ("/predict", b'{"inputs": 5}'),
]


def build_model(work: Path) -> Path:
    cli = [sys.executable, "-m", "modernbert_glue.cli"]
    subprocess.run([*cli, "train", "--preset", "cpu-sbert", "--data-dir", str(SST2_DIR), "--max-train-samples", "256",
                    "--max-eval-samples", "64", "--epochs", "1", "--output-dir", str(work / "run")], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*cli, "export", "onnx", "--model", str(work / "run" / "model"), "--output", str(work / "onnx"),
                    "--quantize", "int8"], check=True, stdout=subprocess.DEVNULL)
    return work / "onnx"


def requests(texts: list[str], n: int, seed: int) -> list[tuple[str, bytes, bool]]:
    """(route, body, well_formed): 1-8 sentences each, /v1/classify or TEI's batch form on /predict."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 10 == 9:
            route, body = MALFORMED[(i // 10) % len(MALFORMED)]
            out.append((route, body, False))
            continue
        batch = [texts[rng.randrange(len(texts))] for _ in range(rng.randint(1, 8))]
        if rng.random() < 0.5:
            out.append(("/v1/classify", json.dumps({"texts": batch}).encode(), True))
        else:
            out.append(("/predict", json.dumps({"inputs": [[t] for t in batch], "truncate": True}).encode(), True))
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model or export folder to serve (default: build one)")
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.output.exists():
        sys.exit(f"error: {args.output}: exists (results are not overwritten)")
    record = provenance()
    with tempfile.TemporaryDirectory() as work:
        model = args.model or build_model(Path(work))
        texts = sentences(SST2_DIR)
        plan = requests(texts, args.requests, args.seed)
        server = start_server(model, "--backend", args.backend, timeout=120, quiet=True)
        chunks = []
        try:
            for start in range(0, len(plan), 1000):
                part = plan[start : start + 1000]
                started = time.perf_counter()
                results = asyncio.run(load(server.port, [(route, body) for route, body, _ in part], args.clients))
                seconds = time.perf_counter() - started
                # `load` returns results in completion order; statuses are matched to kinds by counting.
                statuses = [status for _, status in results]
                chunks.append({"requests": len(part), "seconds": round(seconds, 2),
                               "requests_per_s": round(len(part) / seconds, 1),
                               "status_counts": {str(s): statuses.count(s) for s in sorted(set(statuses))},
                               "rss_mb_after": rss_mb(server.proc.pid)})
                print(chunks[-1], file=sys.stderr)
            alive = server.proc.poll() is None
        finally:
            server.stop()
    well_formed = sum(ok for _, _, ok in plan)
    malformed = len(plan) - well_formed
    ok_200 = sum(c["status_counts"].get("200", 0) for c in chunks)
    count = lambda pred: sum(n for c in chunks for s, n in c["status_counts"].items() if pred(int(s)))  # noqa: E731
    growth = chunks[-1]["rss_mb_after"] / chunks[0]["rss_mb_after"] - 1
    summary = {
        "requests": len(plan), "clients": args.clients, "well_formed": well_formed, "malformed": malformed,
        "answered_200": ok_200, "answered_4xx": count(lambda s: 400 <= s < 500), "answered_5xx": count(lambda s: s >= 500),
        "connection_failures": count(lambda s: s == 0),
        # every malformed request gets a 4xx and every well-formed one a 200 exactly when these two hold:
        "well_formed_errors": well_formed - ok_200, "server_alive_at_end": alive,
        "rss_growth_first_to_last_thousand": round(growth, 4),
    }
    summary["passed"] = (summary["well_formed_errors"] == 0 and summary["answered_4xx"] == malformed
                         and summary["answered_5xx"] == 0 and alive and growth < 0.10)
    write_json(args.output, {"benchmark": "load_serve", "model": str(args.model or "built: cpu-sbert 256 sentences, "
                             "1 epoch, int8 ONNX"), "backend": args.backend, "summary": summary, "per_thousand": chunks,
                             **record})
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
