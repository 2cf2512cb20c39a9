"""Issue 4's GPU protocol: ModernBERT-base (random weights) on SST-2 with the paper's recipe, every input path.
Whole training runs moved to benchmarks/gpu_engine.py (the training engine against the plain HF Trainer);
this script measures the input paths and inference.

On a lent GPU, from the repository root. `../shared` does not travel to that machine, so first, here:
    bash benchmarks/gpu_protocol_prepare.sh      (fills the git-ignored .gpu/: config, tokenizer, SST-2, wheel)
then one device call, carry [".gpu"], timeout 420 s:
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl &&
    PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1 python3 benchmarks/gpu_protocol.py $OUT/protocol \
        --model .gpu/modernbert-base --data-dir .gpu/sst2
It needs torch, transformers, numpy and tokenizers only (no `datasets`; transformers 5.24.0 comes as a wheel,
see gpu_protocol_prepare.sh).
Here, on CPU, a smoke check of the script itself with a tiny model built from the same config
(tests/bench/test_gpu_protocol.py runs it):
    .venv/bin/python benchmarks/gpu_protocol.py /tmp/gpu-protocol --tiny

What it does, writing one JSON file per step into OUT_DIR (never into a non-empty folder), within
--budget-seconds (default 270 s, so that a 5-minute call can be rerun once):
1. env.json: device, versions, the bf16 matmul rate measured here (MFU's denominator).
2. train-paths.json: `bench train` on padded (to 128), dynamic, grouped and packed, batch 64, bf16 autocast on a GPU,
   --steps timed steps x 3 repeats (median), each path's 2-epoch time extrapolated from its step time, and MFU.
3. train-variants.json: the packed path eager in fp32 and bf16, with a fixed token budget (one static shape),
   then torch.compile and torch.compile with CUDA graphs (mode reduce-overhead; GPU only) on that static shape,
   while the time budget allows; a variant that does not fit is recorded as skipped, with the reason.
4. infer.json: `bench infer` on the four paths; fixed lengths 128, 512, 2048, 8192 (CPU: 128, 512); the paper's
   Table 2 inputs: fixed 512 and 8192, and lengths around means of 256 and 4096, padded and packed.
5. summary.json: the headline numbers (extrapolated 2-epoch times and MFU per path and variant).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

from common import TINY, add_model_options, new_output_folder  # benchmarks/common.py, this script's sibling

from modernbert_glue.bench.flops import add_mfu, matmul_tflops
from modernbert_glue.bench.lengths import run_lengths
from modernbert_glue.bench.paths import BenchConfig, run_bench, sample
from modernbert_glue.config import load_config
from modernbert_glue.data import read_examples
from modernbert_glue.device import use_bf16
from modernbert_glue.outputs import write_json
from modernbert_glue.provenance import device_name, provenance
from modernbert_glue.tasks import get_task

ROW_TOKENS = 256


class Clock:
    """Seconds left of the budget; a step that would not fit is skipped rather than run over."""

    def __init__(self, budget: float):
        self.start, self.budget = time.perf_counter(), budget

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)


def token_budget(token_ids: list[list[int]], batch_size: int, quantile: float = 0.995) -> int:
    """Tokens per packed batch that fit `quantile` of one epoch's random batches (whole rows of ROW_TOKENS)."""
    import numpy as np

    from modernbert_glue.training.budgets import plan_run, rows_needed

    lengths = [len(ids) for ids in token_ids]
    rows = [rows_needed([lengths[i] for i in batch], ROW_TOKENS)
            for batch in plan_run(lengths, batch_size, 1.0, seed=0).batches]
    return int(np.quantile(rows, quantile, method="higher")) * ROW_TOKENS


def two_epoch_steps(n_train: int, batch_size: int, epochs: float) -> int:
    return int(epochs) * math.ceil(n_train / batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    add_model_options(parser)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per repeat (default: GPU 20, CPU 2)")
    parser.add_argument("--budget-seconds", type=float, default=270.0)
    parser.add_argument("--skip-compile", action="store_true", help="no torch.compile variants (quick CPU checks)")
    args = parser.parse_args()
    out = new_output_folder(args.out_dir)
    clock = Clock(args.budget_seconds)

    import torch

    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    recipe = load_config("paper").train
    task = get_task("sst2")
    train = read_examples(args.data_dir / "train.tsv", task)
    if args.train_sentences:
        train = {k: v[: args.train_sentences] for k, v in train.items()}
    base = BenchConfig(model=args.model, random_init=True, overrides=TINY if args.tiny else None, mode="train",
                       batch_size=recipe.batch_size, steps=args.steps or (20 if gpu else 2), warmup=3, repeats=3,
                       bf16=use_bf16("auto", "bench"), row_tokens=ROW_TOKENS, seed=0)
    base.sentences = recipe.batch_size * (base.warmup + 2 * base.steps * base.repeats)  # infer runs 2x the steps
    rate = matmul_tflops(device, base.bf16)
    meta = {"device": device_name(), "gpu": gpu, "matmul": rate, "recipe": dataclasses.asdict(recipe),
            "bench_config": dataclasses.asdict(base), "tiny": args.tiny, **provenance()}
    write(out / "env.json", meta)

    steps_2ep = two_epoch_steps(len(train["sentence"]), recipe.batch_size, recipe.epochs)
    sentences, labels = sample(train["sentence"], train["label"], base.sentences, base.seed)

    def measured(cfg: BenchConfig) -> list[dict]:
        records = run_bench(cfg, sentences, labels)
        add_mfu(records, rate)
        for r in records:
            r["extrapolated_two_epoch_seconds"] = round(r["seconds_per_step_median"] * steps_2ep, 2)
        return records

    paths = measured(base)
    write(out / "train-paths.json", {**meta, "two_epoch_steps": steps_2ep, "results": paths})

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    train_ids = tokenizer(train["sentence"], truncation=True, max_length=128)["input_ids"]
    budget = token_budget(train_ids, recipe.batch_size)
    packed = dataclasses.replace(base, paths=("packed",))
    variants = [("packed fp32", dataclasses.replace(packed, bf16=False)),
                ("packed bf16", dataclasses.replace(packed, bf16=True)),
                ("packed bf16, static shape", dataclasses.replace(packed, bf16=True, token_budget=budget))]
    compiled = [("packed bf16, static shape, torch.compile",
                 dataclasses.replace(packed, bf16=True, token_budget=budget, compile="default"))]
    if args.skip_compile:
        compiled = []
    elif gpu:
        compiled.append(("packed bf16, static shape, torch.compile + CUDA graphs",
                         dataclasses.replace(packed, bf16=True, token_budget=budget, compile="reduce-overhead")))
    variant_records = [attempt(name, lambda: measured(cfg)[0]) for name, cfg in variants]
    write(out / "train-variants.json", {**meta, "token_budget": budget, "results": variant_records})

    infer = dataclasses.replace(base, mode="infer", steps=base.steps * 2, bf16=use_bf16("auto", "bench"))
    long_lengths = (128, 512, 2048, 8192) if gpu else (128, 512)
    infer_report = {**meta, "paths": run_bench(infer, sentences, labels),
                    "lengths": run_lengths(dataclasses.replace(infer, lengths=long_lengths), sentences),
                    "table2": run_lengths(dataclasses.replace(infer, lengths=(512, 8192) if gpu else (512,),
                                                              variable_means=(256, 4096) if gpu else (256,)),
                                          sentences)}
    write(out / "infer.json", infer_report)

    for name, cfg in compiled:  # compiling costs minutes at worst: only while the budget allows
        if clock.left() < 90:
            variant_records.append({"variant": name, "skipped": f"time budget ({clock.left():.0f} s left)"})
            continue
        variant_records.append(attempt(name, lambda: measured(cfg)[0]))
        write(out / "train-variants.json", {**meta, "token_budget": budget, "results": variant_records})

    timed = [r for r in paths + variant_records if "seconds_per_step_median" in r]
    summary = {
        "device": meta["device"], "matmul_tflops": rate["tflops"], "matmul_dtype": rate["dtype"],
        "two_epoch_steps": steps_2ep,
        "extrapolated_two_epoch_seconds": {label(r): r["extrapolated_two_epoch_seconds"] for r in timed},
        "mfu": {label(r): r["mfu"] for r in timed},
        "elapsed_seconds": round(args.budget_seconds - clock.left(), 1),
        "real_model": not args.tiny,
    }
    write(out / "summary.json", summary)
    print(json.dumps(summary, indent=2))


def attempt(name: str, measure) -> dict:
    """One measurement; an exception (say, a compiler failure on this GPU) is recorded, not fatal."""
    try:
        return {"variant": name, **measure()}
    except Exception as exc:  # noqa: BLE001 - the protocol must finish and report what failed
        print(f"{name}: failed: {exc!r}", file=sys.stderr)
        return {"variant": name, "error": repr(exc)[:2000]}


def label(record: dict) -> str:
    return record.get("variant") or record["path"]


def write(path: Path, payload: dict) -> None:
    write_json(path, payload)


if __name__ == "__main__":
    main()
