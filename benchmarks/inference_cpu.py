"""CPU inference and serving benchmark for a fine-tuned classifier (issue: Serve).

    .venv/bin/python benchmarks/inference_cpu.py --model RUN/model --output benchmarks/results/inference-cpu.json

1. Offline throughput on SST-2 dev + test sentences (2,693), tokenization included, start-up excluded, median of
   3 passes, for torch fp32, torch bf16, ONNX fp32 and ONNX int8 (exported here), in one process, with label
   agreement against torch fp32.
2. `modernbert-glue predict --backend onnx --input FILE` on the int8 export, 3 runs; the rate is the command's
   own log line (loading excluded).
3. Serving: `modernbert-glue serve` (default options) on a loopback port for torch fp32, torch bf16 (`--bf16 on`)
   and ONNX int8; latency p50/p95/p99 of one-sentence requests from 1 client, then throughput and latency at
   1, 8 and 32 concurrent clients sending 8 sentences per request (a fixed number of requests per level,
   `--repeats` times: the median rate is reported, latencies over all repeats), with the error count. The
   32-client rate is compared with the same backend's offline rate measured again just before its server
   starts (this machine's speed drifts over minutes). The load generator is a single-threaded asyncio
   client on the same 2 cores as the server.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import (  # benchmarks/common.py, this script's sibling
    REPO,
    SST2_DIR,
    load,
    sentences,
)

from modernbert_glue.inference.backends import Classifier
from modernbert_glue.inference.export import export_onnx
from modernbert_glue.inference.launch import start_server
from modernbert_glue.inference.onnx import OnnxClassifier
from modernbert_glue.provenance import provenance


def timed(fn, texts, repeats=3):
    times, probs = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        probs = fn(texts)
        times.append(time.perf_counter() - started)
    return statistics.median(times), probs


def offline(model_dir: Path, texts: list[str], work: Path) -> tuple[list[dict], dict]:
    fp32_dir, int8_dir = work / "onnx-fp32", work / "onnx-int8"
    export_onnx(str(model_dir), str(fp32_dir))
    export_onnx(str(model_dir), str(int8_dir), quantize="int8")
    systems = {
        "torch fp32": Classifier.load(str(model_dir)),
        "torch bf16": Classifier.load(str(model_dir), bf16=True),
        "onnx fp32": OnnxClassifier(fp32_dir),
        "onnx int8": OnnxClassifier(int8_dir),
    }
    rows, reference = [], None
    for name, clf in systems.items():
        clf.probabilities(texts[:64])  # warm-up
        seconds, probs = timed(clf.probabilities, texts)
        labels = probs.argmax(axis=1)
        reference = labels if reference is None else reference
        rows.append({"system": name, "sentences": len(texts), "seconds_median": round(seconds, 3),
                     "sentences_per_s": round(len(texts) / seconds, 1),
                     "label_agreement_with_torch_fp32": float(np.mean(labels == reference))})
        print(rows[-1], file=sys.stderr)
    rows[0]["labels"] = [systems["torch fp32"].label_names[i] for i in reference]
    return rows, systems


def predict_cli(export_dir: Path, texts: list[str], work: Path, reference: list[str]) -> dict:
    """`modernbert-glue predict --backend onnx --input FILE` end to end; its own log line gives the rate with
    start-up (imports, loading the session) excluded. Agreement against torch fp32's labels from `offline`."""
    import re

    path = work / "sentences.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    cmd = [str(REPO / ".venv/bin/modernbert-glue"), "predict", "--backend", "onnx", "--model", str(export_dir),
           "--input", str(path)]
    rates = []
    for _ in range(3):
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rates.append(float(re.search(r"\(([0-9.]+) texts/s", done.stderr).group(1)))
    labels = [json.loads(line)["label"] for line in done.stdout.splitlines()]
    agree = float(np.mean([a == b for a, b in zip(labels, reference)]))
    return {"command": " ".join(cmd[1:]), "sentences": len(texts), "sentences_per_s_runs": rates,
            "sentences_per_s_median": statistics.median(rates), "label_agreement_with_torch_fp32": agree}


def _latency(results: list[tuple[float, int]]) -> dict:
    lat = np.array([t for t, _ in results]) * 1000
    return {"p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2), "errors": sum(status != 200 for _, status in results)}


def serving(model_dir: Path, backend: str, texts: list[str], requests_per_level: int, extra: list[str],
            repeats: int = 1) -> dict:
    import asyncio


    server = start_server(model_dir, "--backend", backend, *extra, timeout=60, quiet=True)
    port = server.port
    try:
        def body(batch: list[str]) -> bytes:
            return json.dumps({"texts": batch}).encode()

        asyncio.run(load(port, [body(texts[i : i + 8]) for i in range(0, 160, 8)], 1))  # warm-up
        single = asyncio.run(load(port, [body([texts[i % len(texts)]]) for i in range(200)], 1))
        out = {"backend": backend, "server_options": extra,
               "one_sentence_requests": {"n": len(single), **_latency(single)}, "levels": []}
        for clients in (1, 8, 32):
            payloads = [body([texts[(r * 8 + k) % len(texts)] for k in range(8)]) for r in range(requests_per_level)]
            rates, results = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                results += (run := asyncio.run(load(port, payloads, clients)))
                rates.append(round(8 * len(run) / (time.perf_counter() - started), 1))
            out["levels"].append({"concurrent_clients": clients, "requests": len(results), "sentences_per_request": 8,
                                  "sentences_per_s": statistics.median(rates), "sentences_per_s_runs": rates,
                                  **_latency(results)})
            print(out["levels"][-1], file=sys.stderr)
        return out
    finally:
        server.stop(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="fine-tuned model folder (RUN/model)")
    parser.add_argument("--data-dir", type=Path, default=SST2_DIR)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--requests-per-level", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each serving level (median rate reported)")
    args = parser.parse_args()
    if args.output.exists():
        sys.exit(f"error: {args.output} exists (results are not overwritten)")
    texts = sentences(args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows, systems = offline(args.model, texts, work)
        cli = predict_cli(work / "onnx-int8", texts, work, rows[0].pop("labels"))
        served = [("torch fp32", args.model, "torch", []), ("torch bf16", args.model, "torch", ["--bf16", "on"]),
                  ("onnx int8", work / "onnx-int8", "onnx", [])]
        serve_rows = []
        for system, folder, backend, extra in served:
            seconds, _ = timed(systems[system].probabilities, texts)  # the offline rate again, just before
            row = {"system": system, **serving(folder, backend, texts, args.requests_per_level, extra, args.repeats)}
            top = row["levels"][-1]["sentences_per_s"]
            row["offline_sentences_per_s"] = round(len(texts) / seconds, 1)
            row["ratio_32_clients_to_offline"] = round(top / row["offline_sentences_per_s"], 3)
            serve_rows.append(row)
    report = {"benchmark": "inference-cpu", "model": str(args.model), "offline": rows, "predict_cli_onnx_int8": cli,
              "serving": serve_rows, **provenance()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"offline": rows, "predict_cli_onnx_int8": cli, "serving": serve_rows}, indent=1))


if __name__ == "__main__":
    main()
