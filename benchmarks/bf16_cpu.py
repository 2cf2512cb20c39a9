"""bf16 autocast against fp32 on this CPU: the cpu-sbert preset's training steps, side by side in one run.

    .venv/bin/python benchmarks/bf16_cpu.py --output benchmarks/results/bf16-cpu.json

Why: the preset trained in bf16 because the CPU it was chosen on has AMX / AVX-512 BF16 units, where bf16 steps
were faster; a CPU without them emulates bf16. Each repeat trains all-MiniLM-L6-v2 with the preset for one epoch
of --train-sentences SST-2 sentences (batch 16), evaluating dev once, with `train.bf16` on and then off, each in
its own `modernbert-glue train` process; the times are the runs' own `train_seconds` (training steps and the one
evaluation). Reports each setting's median and spread and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import SST2_DIR  # benchmarks/common.py, this script's sibling

from modernbert_glue.device import fast_cpu_bf16
from modernbert_glue.outputs import write_json
from modernbert_glue.provenance import provenance


def train_seconds(bf16: str, sentences: int, work: Path) -> float:
    out = work / f"run-{bf16}"
    command = [sys.executable, "-m", "modernbert_glue.cli", "train", "--preset", "cpu-sbert", "--data-dir",
               str(SST2_DIR), "--max-train-samples", str(sentences), "--max-eval-samples", "64", "--epochs", "1",
               "--batch-size", "16", "--set", "train.evals_per_epoch=1", "--set", f"train.bf16={bf16}",
               "--output-dir", str(out), "--overwrite"]
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode:
        sys.exit(proc.stderr[-2000:])
    return float(json.loads(proc.stdout)["train_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-sentences", type=int, default=64)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.repeats):
            for setting in times:  # interleaved: a drift in the machine's speed reaches both alike
                times[setting].append(train_seconds(setting, args.train_sentences, Path(work)))
    summary = {setting: {"seconds": values, "median": statistics.median(values),
                         "spread": [min(values), max(values)]} for setting, values in times.items()}
    result = {
        "cpu_has_bf16_units": fast_cpu_bf16(),
        "setup": {"preset": "cpu-sbert", "train_sentences": args.train_sentences, "batch_size": 16, "epochs": 1,
                  "eval_sentences": 64, "repeats": args.repeats},
        "train_seconds": summary,
        "bf16_over_fp32_time": summary["on"]["median"] / summary["off"]["median"],
        **provenance(),
    }
    write_json(args.output, result)
    print(json.dumps({k: result[k] for k in ("cpu_has_bf16_units", "bf16_over_fp32_time")}))


if __name__ == "__main__":
    main()
