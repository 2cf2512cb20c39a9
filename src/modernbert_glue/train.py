"""Fine-tune with the Hugging Face Trainer and write the run folder.

Run folder layout (``--output-dir``):
    model/               weights (safetensors), config with label names, tokenizer
    metrics.json         dev metrics + timing (see `write_run_files`)
    run.json             resolved config, package versions, git commit, hardware, command line
    predictions_dev.tsv  idx, sentence, label, prediction, score per dev example (and _test with --test-file)
    analysis_dev.json, misclassified_dev.tsv   see runfolder.py
    log_history.json     the Trainer's logged losses, learning rates and evaluations
    logs/                TensorBoard event files

Runs unchanged under `torchrun`/`accelerate launch`: the Trainer handles DDP; only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path

from .config import RunConfig
from .data import load_split, tokenize
from .errors import UserError
from .metrics import classification_metrics
from .models import build_classifier
from .predict import Classifier
from .provenance import device_name, provenance
from .runfolder import check_output_dir, evaluate_into, labelled_eval_sets, write_json
from .tasks import get_task

PACKED_MODEL_TYPES = ("modernbert", "bert")
# `auto` by model type, from measurements on this CPU: ModernBERT-base training ran 1.13x the real tokens/s of
# grouped batches packed (benchmarks/results/bench-train-cpu.json); all-MiniLM-L6-v2 (BERT) ran grouped batches
# ~1.8x faster than packed ones (bench-train-sbert-cpu.json). Other model types get grouped batches.
AUTO_INPUT_PATH = {"modernbert": "packed", "bert": "grouped"}
PACKED_ROW_TOKENS = 256  # attention cost grows with a packed row's square; 256 was faster than one long row

log = logging.getLogger(__name__)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def use_bf16(setting: str) -> bool:
    import torch

    if setting == "auto":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if setting in ("true", "false"):
        return setting == "true"
    raise UserError(f"train.bf16 must be 'auto', 'true' or 'false', got '{setting}'")


def training_arguments(cfg: RunConfig, out: Path, n_train: int, input_path: str):
    from transformers import TrainingArguments

    t = cfg.train
    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps_per_epoch = max(1, math.ceil(n_train / (t.batch_size * world)))
    eval_steps = max(1, steps_per_epoch // max(1, t.evals_per_epoch))
    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        learning_rate=t.lr,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        weight_decay=t.weight_decay,
        adam_beta1=t.adam_beta1,
        adam_beta2=t.adam_beta2,
        adam_epsilon=t.adam_epsilon,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the total steps
        max_grad_norm=t.max_grad_norm,
        label_smoothing_factor=t.label_smoothing,
        seed=t.seed,
        bf16=use_bf16(t.bf16),
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_only_model=True,
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        greater_is_better=True,
        train_sampling_strategy="group_by_length" if input_path == "grouped" else "random",
        remove_unused_columns=input_path != "packed",  # the packed model takes `packed`, not input_ids
        logging_steps=t.logging_steps,
        report_to="none",  # TensorBoard is attached explicitly so its logs land in <out>/logs
        ddp_backend="gloo" if world > 1 and not _cuda() else None,
        ddp_find_unused_parameters=False,
        dataloader_pin_memory=_cuda(),
        use_cpu=not _cuda(),
    )


INPUT_PATHS = ("auto", "padded", "dynamic", "grouped", "packed")


def resolve_input_path(setting: str, model) -> str:
    """`auto`: the fastest path measured for the model type (AUTO_INPUT_PATH), else length-grouped."""
    if setting not in INPUT_PATHS:
        raise UserError(f"train.input_path must be one of {', '.join(INPUT_PATHS)}, got '{setting}'")
    if setting != "auto":
        if setting == "packed" and model.config.model_type not in PACKED_MODEL_TYPES:
            raise UserError(f"input path 'packed' supports {', '.join(PACKED_MODEL_TYPES)} models, "
                            f"not '{model.config.model_type}'")
        return setting
    return AUTO_INPUT_PATH.get(model.config.model_type, "grouped")


def make_collator(input_path: str, tokenizer, max_length: int, token_budget: int = 0):
    from transformers import DataCollatorWithPadding

    check_token_budget(token_budget, input_path)
    if input_path == "packed":
        from .packing import PackedCollator

        return PackedCollator(pad_id=tokenizer.pad_token_id, row_tokens=PACKED_ROW_TOKENS, token_budget=token_budget)
    if input_path == "padded":
        return DataCollatorWithPadding(tokenizer, padding="max_length", max_length=max_length)
    return DataCollatorWithPadding(tokenizer)


def check_token_budget(token_budget: int, input_path: str) -> None:
    if not token_budget:
        return
    if input_path != "packed":
        raise UserError(f"train.packed_token_budget needs the packed input path, not '{input_path}'")
    if token_budget < 0 or token_budget % PACKED_ROW_TOKENS:
        raise UserError(f"train.packed_token_budget must be a multiple of {PACKED_ROW_TOKENS} tokens, "
                        f"got {token_budget}")


@contextlib.contextmanager
def cpu_attention_kernel(flash: bool):
    """SDPA's kernel choice on CPU while training (the flag is process-wide, so it is restored after).

    Measured here (all-MiniLM-L6-v2, SST-2 batches, bf16): the CPU flash kernel made training steps without
    dropout ~1.4x slower than the math kernel on these short sequences (dropout already forces math).
    """
    import torch

    if flash or _cuda():
        yield
        return
    before = torch.backends.cuda.flash_sdp_enabled()  # despite the name, the flag SDPA consults on CPU too
    torch.backends.cuda.enable_flash_sdp(False)
    try:
        yield
    finally:
        torch.backends.cuda.enable_flash_sdp(before)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def train(cfg: RunConfig, output_dir: str, *, overwrite: bool = False) -> dict:
    """Fine-tune `cfg.model` on `cfg.data`, evaluate on dev, save everything; returns metrics.json's content."""
    import torch
    from transformers import EarlyStoppingCallback, Trainer, set_seed
    from transformers.integrations import TensorBoardCallback

    out = Path(output_dir)
    if is_main_process():
        check_output_dir(out, overwrite)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    use_bf16(cfg.train.bf16)  # validate before the slow part
    record = provenance()  # at the start: the code and command that this run actually used
    task = get_task(cfg.data.task)
    train_raw = load_split(cfg.data, task, "train")
    dev_raw = load_split(cfg.data, task, "validation")
    eval_sets = labelled_eval_sets(cfg.data, task, dev_raw)

    set_seed(cfg.train.seed)
    model, tokenizer = build_classifier(
        cfg.model.name, task, random_init=cfg.model.random_init, overrides=cfg.model.overrides
    )
    if cfg.train.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    input_path = resolve_input_path(cfg.train.input_path, model)
    collator = make_collator(input_path, tokenizer, cfg.data.max_length, cfg.train.packed_token_budget)
    train_ds = tokenize(train_raw, tokenizer, cfg.data.max_length)
    dev_ds = tokenize(dev_raw, tokenizer, cfg.data.max_length)
    if input_path == "packed":
        from .packing import PackedClassifier

        model = PackedClassifier(model)
    log.info("input path: %s", input_path)

    callbacks = []
    if is_main_process():
        from torch.utils.tensorboard import SummaryWriter

        callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(out / "logs"))))
    if cfg.train.ema_decay > 0:
        from .ema import EMACallback

        callbacks.append(EMACallback(cfg.train.ema_decay))
    if cfg.train.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.train.early_stopping_patience))

    trainer = Trainer(
        model=model,
        args=training_arguments(cfg, out, len(train_ds), input_path),
        train_dataset=train_ds,
        eval_dataset=dev_ds,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=_compute_metrics,
        callbacks=callbacks,
    )
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr), cpu_attention_kernel(cfg.train.cpu_flash_attention):
        result = trainer.train()  # the Trainer prints its logs; stdout is for results
    train_seconds = time.perf_counter() - started
    if not trainer.is_world_process_zero():
        return {}

    hf_model = trainer.model.model if input_path == "packed" else trainer.model
    hf_model.save_pretrained(str(out / "model"))  # safetensors
    tokenizer.save_pretrained(str(out / "model"))
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # the best one is model/
    clf = Classifier(model=hf_model.eval(), tokenizer=tokenizer, max_length=cfg.data.max_length)
    metrics = {
        "task": task.name,
        "model": cfg.model.name,
        "random_init": cfg.model.random_init,
        "preset": cfg.preset,
        **evaluate_into(out, clf.probabilities, eval_sets),
        "train_samples": len(train_ds),
        "train_seconds": round(train_seconds, 2),
        "train_samples_per_second": round(result.metrics.get("train_samples_per_second", 0.0), 2),
        "train_loss": result.metrics.get("train_loss"),
        "epochs": cfg.train.epochs,
        "steps": trainer.state.global_step,
        "best_step": _best_step(trainer.state.best_model_checkpoint),
        "seed": cfg.train.seed,
        "device": device_name(),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "input_path": input_path,
    }
    write_json(out / "metrics.json", metrics)
    write_json(out / "run.json", {"config": cfg.to_dict(), **record})
    write_json(out / "log_history.json", {"log_history": trainer.state.log_history})
    log.info("dev accuracy %.4f (%d examples); run folder %s", metrics["eval_accuracy"], metrics["eval_samples"], out)
    return metrics


def _compute_metrics(eval_pred) -> dict:
    logits, labels = eval_pred
    m = classification_metrics(labels, logits.argmax(axis=-1))
    m.pop("n")
    return m


def _best_step(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    tail = Path(checkpoint).name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def train_seeds(cfg: RunConfig, output_dir: str, seeds: list[int], *, overwrite: bool = False) -> dict:
    """One run per seed in <output_dir>/seed-<n>/, then the mean ± std over seeds in seeds.json."""
    import dataclasses

    import numpy as np

    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds needs distinct seeds, got {seeds}")
    out = Path(output_dir)
    if is_main_process():
        check_output_dir(out, overwrite)
    runs = []
    for seed in seeds:
        seed_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
        runs.append(train(seed_cfg, str(out / f"seed-{seed}")))
    if not is_main_process():
        return {}
    keys = [k for k in ("eval_accuracy", "eval_f1", "eval_mcc", "test_accuracy", "test_f1", "test_mcc",
                        "train_seconds") if k in runs[0]]
    summary = {"task": runs[0]["task"], "model": runs[0]["model"], "preset": runs[0]["preset"], "seeds": seeds}
    for k in keys:
        values = np.array([r[k] for r in runs], dtype=float)
        summary[f"{k}_mean"] = float(values.mean())
        summary[f"{k}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary[f"{k}_mean_ci"] = mean_interval(values)
    summary["per_seed"] = [{"seed": s, **{k: r[k] for k in keys}} for s, r in zip(seeds, runs)]
    write_json(out / "seeds.json", summary)
    return summary


def mean_interval(values, level: float = 0.95) -> list[float] | None:
    """Student-t interval of the mean over seeds (None for a single seed)."""
    import numpy as np
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return None
    half = stats.t.ppf((1 + level) / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return [float(values.mean() - half), float(values.mean() + half)]
