"""One full SST-2 epoch of all-MiniLM-L6-v2 on this CPU: the plain Hugging Face Trainer against `cpu-sbert`.

    .venv/bin/python benchmarks/cpu_sbert_epoch.py --seeds 1,2,3 --output benchmarks/results/cpu-sbert-epoch-3seeds.json

Both runs per seed in one process, one after the other, on all 67,349 training sentences, then SST-2 dev
accuracy. One seed's dev accuracy moves by ~0.5 points from seed to seed, so the comparison is of the mean
over seeds; the time ratio is of the median times.
- plain: what the notebook does, written with transformers only: AutoModelForSequenceClassification, the
  tokenizer over the whole set, DataCollatorWithPadding (dynamic padding), length-grouped batches of 32,
  lr 5e-5, fp32, every other TrainingArguments field left at its default (AdamW fused, linear decay);
- ours: `modernbert_glue.training.trainer.train` with the cpu-sbert preset and `train.epochs=1`, which also evaluates
  dev 4 times during the epoch with the EMA weights (counted in its time).
Times are the wall time of `Trainer.train()` in each; loading and tokenizing are excluded from both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import SST2_DIR  # benchmarks/common.py, this script's sibling

from modernbert_glue.config import load_config
from modernbert_glue.data import read_examples
from modernbert_glue.models import resolve_model
from modernbert_glue.outputs import write_json
from modernbert_glue.provenance import provenance
from modernbert_glue.tasks import get_task
from modernbert_glue.training.trainer import train

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def plain_epoch(data_dir: Path, work: Path, seed: int, limit: int | None) -> dict:
    import numpy as np
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    path = resolve_model(MODEL)  # the packaged copy offline; the Hub id online
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    task = get_task("sst2")

    def dataset(name: str):
        rows = read_examples(data_dir / name, task)
        if limit and name == "train.tsv":
            rows = {k: v[:limit] for k, v in rows.items()}
        return Dataset.from_dict(rows).map(lambda b: tokenizer(b["sentence"], truncation=True), batched=True)

    train_ds, dev_ds = dataset("train.tsv"), dataset("dev.tsv")
    args = TrainingArguments(output_dir=str(work / "plain"), per_device_train_batch_size=32, num_train_epochs=1,
                             learning_rate=5e-5, train_sampling_strategy="group_by_length", save_strategy="no",
                             eval_strategy="no", report_to="none", use_cpu=True, seed=seed, logging_steps=100)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, data_collator=DataCollatorWithPadding(tokenizer))
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    # The Trainer length-groups evaluation batches too (train_sampling_strategy applies to its eval sampler in
    # transformers 5), so predictions come back in its order: compare them with the labels it returns with them.
    output = trainer.predict(dev_ds)
    accuracy = float(np.mean(output.predictions.argmax(axis=-1) == output.label_ids))
    return {"system": "plain HF Trainer (fp32, dynamic padding + length grouping, batch 32)",
            "train_seconds": round(seconds, 1), "dev_accuracy": accuracy, "steps": trainer.state.global_step}


def ours_epoch(data_dir: Path, work: Path, seed: int, limit: int | None) -> dict:
    cfg = load_config("cpu-sbert", {"train.epochs": 1.0, "train.seed": seed, "data.data_dir": str(data_dir),
                                    "data.max_train_samples": limit})
    metrics = train(cfg, str(work / "ours"))
    return {"system": "modernbert-glue train --preset cpu-sbert --epochs 1", "config": cfg.train.__dict__,
            "train_seconds": metrics["train_seconds"], "dev_accuracy": metrics["eval_accuracy"],
            "steps": metrics["steps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=SST2_DIR)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--seeds", default="1", help="comma-separated; one epoch of each system per seed")
    parser.add_argument("--limit", type=int, default=None, help="train sentences (smoke check of the script only)")
    args = parser.parse_args()
    if args.output.exists():
        sys.exit(f"error: {args.output} exists (results are not overwritten)")
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = {"plain": [], "ours": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for name, fn in (("plain", plain_epoch), ("ours", ours_epoch)):
                runs[name].append({"seed": seed, **fn(args.data_dir, Path(tmp) / f"{name}-{seed}", seed, args.limit)})
                print(json.dumps(runs[name][-1]), file=sys.stderr)
    median = {name: statistics.median(r["train_seconds"] for r in rows) for name, rows in runs.items()}
    dev = {name: statistics.mean(r["dev_accuracy"] for r in rows) for name, rows in runs.items()}
    spread = {name: statistics.stdev(r["dev_accuracy"] for r in rows) if len(rows) > 1 else None
              for name, rows in runs.items()}
    report = {"benchmark": "cpu-sbert-epoch", "model": MODEL, "train_sentences": args.limit or 67349, "seeds": seeds,
              "runs": runs, "median_train_seconds": median, "mean_dev_accuracy": dev, "dev_accuracy_stdev": spread,
              "time_ratio_ours_to_plain": round(median["ours"] / median["plain"], 3),
              "dev_accuracy_difference_points": round(100 * (dev["ours"] - dev["plain"]), 2), **provenance()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.output, report)
    print(json.dumps({k: report[k] for k in ("median_train_seconds", "mean_dev_accuracy",
                                             "time_ratio_ours_to_plain", "dev_accuracy_difference_points")}))


if __name__ == "__main__":
    main()
