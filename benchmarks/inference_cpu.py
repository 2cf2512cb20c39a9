"""CPU inference and serving benchmark for a fine-tuned classifier (issue: Serve).

    .venv/bin/python benchmarks/inference_cpu.py --model RUN/model --output benchmarks/results/inference-cpu.json

1. Offline throughput on SST-2 dev + test sentences (2,693), tokenization included, start-up excluded, median of
   3 passes, for torch fp32, torch bf16, ONNX fp32 and ONNX int8 (exported here), in one process, with label
   agreement against torch fp32.
2. Serving: `modernbert-glue serve` started on a loopback port; latency p50/p95/p99 of one-sentence requests
   from 1 client, then throughput and latency at 1, 8 and 32 concurrent clients sending 8 sentences per request
   (bounded: a fixed number of requests per level), with the error count.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from modernbert_glue.export import OnnxClassifier, export_onnx  # noqa: E402
from modernbert_glue.predict import Classifier  # noqa: E402
from modernbert_glue.provenance import provenance  # noqa: E402


def sentences(data_dir: Path) -> list[str]:
    out = []
    for name in ("dev.tsv", "test_labeled.tsv"):
        out += [line.split("\t")[0] for line in (data_dir / name).read_text(encoding="utf-8").splitlines()[1:]]
    return out


def timed(fn, texts, repeats=3):
    times, probs = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        probs = fn(texts)
        times.append(time.perf_counter() - started)
    return statistics.median(times), probs


def offline(model_dir: Path, texts: list[str], work: Path) -> list[dict]:
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
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(model_dir: Path, backend: str, texts: list[str], requests_per_level: int) -> dict:
    import httpx

    port = free_port()
    cmd = [str(REPO / ".venv/bin/modernbert-glue"), "serve", "--model", str(model_dir), "--port", str(port),
           "--backend", backend]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = httpx.Client(timeout=30)

        def call(batch):
            started = time.perf_counter()
            try:
                ok = client.post(f"{url}/v1/classify", json={"texts": batch}).status_code == 200
            except httpx.HTTPError:
                ok = False
            return time.perf_counter() - started, ok

        for i in range(20):  # warm-up
            call(texts[i : i + 8])
        single = [call([texts[i % len(texts)]]) for i in range(200)]
        lat = np.array([t for t, _ in single]) * 1000
        out = {"backend": backend, "one_sentence_requests": {
            "n": len(single), "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p95_ms": round(float(np.percentile(lat, 95)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
            "errors": sum(not ok for _, ok in single)}, "levels": []}
        for clients in (1, 8, 32):
            batches = [[texts[(r * 8 + k) % len(texts)] for k in range(8)] for r in range(requests_per_level)]
            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                results = list(pool.map(call, batches))
            wall = time.perf_counter() - started
            lat = np.array([t for t, _ in results]) * 1000
            out["levels"].append({
                "concurrent_clients": clients, "requests": len(results), "sentences_per_request": 8,
                "sentences_per_s": round(8 * len(results) / wall, 1),
                "p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2),
                "p99_ms": round(float(np.percentile(lat, 99)), 2), "errors": sum(not ok for _, ok in results)})
            print(out["levels"][-1], file=sys.stderr)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="fine-tuned model folder (RUN/model)")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/data/sst2")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--requests-per-level", type=int, default=320)
    args = parser.parse_args()
    if args.output.exists():
        sys.exit(f"error: {args.output} exists (results are not overwritten)")
    texts = sentences(args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = offline(args.model, texts, work)
        serve_rows = [serving(args.model, "torch", texts, args.requests_per_level),
                      serving(work / "onnx-int8", "onnx", texts, args.requests_per_level)]
    report = {"benchmark": "inference-cpu", "model": str(args.model), "offline": rows, "serving": serve_rows,
              **provenance()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"offline": rows, "serving": serve_rows}, indent=1))


if __name__ == "__main__":
    main()
