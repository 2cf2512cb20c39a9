"""Issue 16's device script: N concurrent SST-2 paper-recipe runs of ModernBERT-base (random weights) against one,
through `modernbert-glue sweep`'s launcher: total throughput (optimizer steps per second over all runs) of N at once
over one alone. Bar: at least 4x with N = 8.

On a lent GPU, from the repository root, after `bash benchmarks/gpu_protocol_prepare.sh` here; one device call,
carry [".gpu"], timeout_s 360:
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl &&
    PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1 python3 benchmarks/gpu_sweep.py $OUT/sweep \
        --model .gpu/modernbert-base --data-dir .gpu/sst2
Here, on CPU, a check of the script itself with the tiny model:
    .venv/bin/python benchmarks/gpu_sweep.py /tmp/gpu-sweep --tiny --runs 2 --steps 4 --train-sentences 256

Each run is `train --preset paper --random-init --set train.max_steps=STEPS` (the paper's recipe, cut to STEPS
steps so that both phases fit one call), its own process with its own CUDA context; the N runs differ in seed.
Files in OUT_DIR: one/ and many/ (the sweep folders), summary.json (wall times, steps/s, the ratio, the device).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import TINY, add_model_options, new_output_folder  # benchmarks/common.py, this script's sibling

BAR_RATIO = 4.0


def run_sweep(out: Path, args, seeds: list[int]) -> float:
    """Wall seconds of one `sweep` over `seeds` (all at once)."""
    command = [sys.executable, "-m", "modernbert_glue.cli", "sweep", "--preset", "paper", "--model", args.model,
               "--random-init", "--data-dir", str(args.data_dir), "--lr", "8e-5",
               "--seeds", ",".join(map(str, seeds)), "--parallel", str(len(seeds)), "--memory-per-run-gb",
               str(args.memory_per_run_gb), "--set", f"train.max_steps={args.steps}", "--set", "train.evals_per_epoch=1",
               "--output-dir", str(out)]
    if args.train_sentences:
        command += ["--max-train-samples", str(args.train_sentences)]
    if args.tiny:
        command += [a for key, value in TINY.items() for a in ("--model-override", f"{key}={value}")]
    started = time.perf_counter()
    with (out.parent / f"{out.name}.log").open("w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path)
    add_model_options(parser)
    parser.add_argument("--runs", type=int, default=8, help="runs at once in the second phase")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per run")
    parser.add_argument("--memory-per-run-gb", type=float, default=8.0)
    args = parser.parse_args()
    out = new_output_folder(args.output_dir)
    one = run_sweep(out / "one", args, [1])
    many = run_sweep(out / "many", args, list(range(1, args.runs + 1)))
    ratio = (args.runs * args.steps / many) / (args.steps / one)
    from modernbert_glue.provenance import provenance

    summary = {"runs": args.runs, "steps_per_run": args.steps, "one_wall_seconds": round(one, 2),
               "many_wall_seconds": round(many, 2), "one_steps_per_second": round(args.steps / one, 3),
               "many_steps_per_second": round(args.runs * args.steps / many, 3), "throughput_ratio": round(ratio, 2),
               "bar": BAR_RATIO, "meets_bar": ratio >= BAR_RATIO, "tiny": args.tiny, **provenance()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
