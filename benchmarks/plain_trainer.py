"""The plain HF Trainer, as a notebook user writes it: the anchor issue 13's engine is measured against.

ModernBERT (random weights: none are reachable) fine-tuned on SST-2 with the paper's recipe — lr 8e-5, weight decay
1e-5, AdamW (0.9, 0.98), eps 1e-6, linear decay after a 6% warmup, batch 64, bf16 on a GPU — through `Trainer` and
`DataCollatorWithPadding` (dynamic padding, random batches), without evaluations or checkpoints: only training
steps are timed. No `datasets` (plain lists), so it runs on the GPU image as it is.

It runs --steps steps (default 300), not the 2,106 of two epochs: the first --warmup-steps (10) are start-up, the
rest give the steady rate, and the two-epoch time is extrapolated from both:
    warm-up seconds + steady seconds per step x (two-epoch steps - warm-up steps).
Writes one JSON file. benchmarks/gpu_engine.py runs it as step (a); alone:
    python benchmarks/plain_trainer.py OUT.json --model ../shared/models/modernbert-base --data-dir ../shared/data/sst2
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from common import TINY, add_model_options  # benchmarks/common.py, this script's sibling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    add_model_options(parser)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup-steps", type=int, default=10)
    args = parser.parse_args()

    import torch
    import transformers
    from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments)

    from modernbert_glue.data import read_examples
    from modernbert_glue.tasks import get_task

    train = read_examples(args.data_dir / "train.tsv", get_task("sst2"))
    n = min(args.train_sentences or len(train["sentence"]), len(train["sentence"]))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    encoded = tokenizer(train["sentence"][:n], truncation=True, max_length=128)
    rows = [{"input_ids": i, "attention_mask": a, "labels": y}
            for i, a, y in zip(encoded["input_ids"], encoded["attention_mask"], train["label"][:n])]
    config = AutoConfig.from_pretrained(args.model, num_labels=2)
    if args.tiny:
        config.update(TINY)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    gpu = torch.cuda.is_available()

    def sync():
        if gpu:
            torch.cuda.synchronize()

    marks = {}

    class Clock(TrainerCallback):
        """Wall time at the start, after the warm-up steps and at the end (the GPU's queue drained at each)."""

        def on_train_begin(self, args_, state, control, **kwargs):
            sync()
            marks["start"] = time.perf_counter()

        def on_step_end(self, args_, state, control, **kwargs):
            if state.global_step == args.warmup_steps:
                sync()
                marks["warm"] = time.perf_counter()

        def on_train_end(self, args_, state, control, **kwargs):
            sync()
            marks["end"] = time.perf_counter()

    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="plain-trainer-"), per_device_train_batch_size=64, learning_rate=8e-5,
        weight_decay=1e-5, adam_beta1=0.9, adam_beta2=0.98, adam_epsilon=1e-6, num_train_epochs=2,
        max_steps=args.steps, warmup_steps=0.06, lr_scheduler_type="linear", bf16=gpu, logging_steps=50,
        save_strategy="no", eval_strategy="no", report_to=[], seed=0, use_cpu=not gpu)
    trainer = Trainer(model=model, args=training_args, train_dataset=rows,
                      data_collator=DataCollatorWithPadding(tokenizer), callbacks=[Clock()])
    trainer.train()
    warm = marks["warm"] - marks["start"]
    steady = (marks["end"] - marks["warm"]) / (args.steps - args.warmup_steps)
    two_epoch_steps = 2 * math.ceil(n / 64)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    record = {
        "anchor": "plain HF Trainer: DataCollatorWithPadding, random batches, paper recipe, no evaluation",
        "device": torch.cuda.get_device_name() if gpu else "cpu", "torch": torch.__version__,
        "transformers": transformers.__version__, "attn_implementation": model.config._attn_implementation,
        "bf16": gpu, "tiny": args.tiny, "train_sentences": n, "steps": args.steps, "warmup_steps": args.warmup_steps,
        "warmup_seconds": round(warm, 3), "steady_ms_per_step": round(1000 * steady, 3),
        "two_epoch_steps": two_epoch_steps,
        "extrapolated_two_epoch_seconds": round(warm + steady * (two_epoch_steps - args.warmup_steps), 2),
        "logged_losses": losses,
    }
    args.output.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "logged_losses"}))


if __name__ == "__main__":
    main()
