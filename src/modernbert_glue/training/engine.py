"""The training engine: a plain PyTorch loop whose whole step is captured once per static shape and replayed.

On an H200 every path through the HF Trainer was bound by kernel launches (MFU 1-2%; ../shared/results/
h200-2026-11-27). Here the batches are packed and padded to a few fixed token budgets (budgets.py), all of
them prepared before the first step; each step (step.py: forward, loss, backward, clipping, AdamW with the
learning rate as a device tensor) is a CUDA graph replay on a GPU (capture.py) and eager, or compiled, on a
CPU. Nothing in the loop waits for the device except logging (every `logging_steps`), evaluations and
checkpoint snapshots (engine_state.py), which the Trainer path has too.

It keeps the Trainer path's recipe and contract: the same optimizer groups, schedule and warmup, evaluations
`evals_per_epoch` times an epoch and at the end, the best checkpoint by the task's main dev metric, EMA, early stopping,
checkpoints and `--resume`, and the same run folder (lifecycle.py). What it lacks sends a run to the Trainer
(dispatch.py). `train_seconds` covers the step loop (with its evaluations and checkpoint copies); preparing
the batches and capturing the steps before it are `prepare_seconds` in log_history.json's "engine" entry.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..data import (
    encode_texts,
    load_run_data,
    texts_of,
)
from ..device import cpu_attention_kernel, default_device, sync, use_bf16
from ..errors import UserError, naming
from ..evaluation.metrics import classification_metrics
from ..inputs import sep_for
from ..models import build_classifier
from ..packing import PackedClassifier, batches_to
from . import capture as graphs
from . import engine_state, stopping
from .budgets import eval_plan, plan_run, static_batch
from .checkpoints import CHECKPOINTS, TrainClock, checkpoint_folder, checkpoint_step, resume_checkpoint
from .ema import EMA
from .lifecycle import check_run, fail_run, finish_run, loss_failure, mean_logged_loss, open_run, stopped_run
from .step import (
    TrainStep,
    build_optimizer,
    compile_layers,
    compile_setting,
    scheduled_lr,
    warmup_warning,
)

log = logging.getLogger(__name__)


def train_engine(cfg: RunConfig, output_dir: str, *, overwrite: bool = False, resume: bool = False) -> dict:
    """Train with the engine and write the run folder; returns metrics.json's content (as trainer.train)."""
    from transformers import set_seed

    out = Path(output_dir)
    record = check_run(cfg, out, overwrite=overwrite, resume=resume)
    task, train_columns, eval_sets = load_run_data(cfg.data)
    if task.regression:  # dispatch.unsupported sends regression to the Trainer; a direct call gets this line
        raise UserError(f"task {task.name}: the engine trains classifiers; use --engine trainer for regression")
    set_seed(cfg.train.seed)  # as the Trainer path: the same seed builds the same random weights
    model, tokenizer = build_classifier(cfg.model.name, task, random_init=cfg.model.random_init,
                                        overrides=cfg.model.overrides, init_from=cfg.model.init_from,
                                        max_length=cfg.data.max_length)
    if cfg.train.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    checkpoint = resume_checkpoint(out) if resume else None
    folder = open_run(cfg, out, record, "engine", overwrite=overwrite, resume=resume, checkpoint=checkpoint)
    run = EngineRun(cfg, out, model, tokenizer, train_columns, eval_sets["dev"], task.metrics)
    with cpu_attention_kernel(cfg.train.cpu_flash_attention):
        run.prepare(checkpoint)
        # a checkpoint's failed write (safetensors', torch.save's error) names the folder it was written to
        with stopping.graceful_stop(), naming(out / CHECKPOINTS, os_errors=False):
            trained = run.train()
    if run.failure is not None:
        fail_run(folder, out, run.failure)
    trained["resumed_from_step"] = checkpoint_step(checkpoint)
    with torch.compiler.set_stance("force_eager"):  # compiled layers would compile again for every eval shape
        return finish_run(folder, cfg, task, model, tokenizer, eval_sets, trained, run.history())


class EngineRun:
    def __init__(self, cfg: RunConfig, out: Path, model, tokenizer, train: dict, dev: dict,
                 metrics: tuple[str, ...] = ("accuracy",)):
        # the task's metrics, logged at each evaluation as the Trainer's are; the first chooses the best checkpoint
        self.cfg, self.t, self.out, self.metrics, self.main_metric = cfg, cfg.train, out, metrics, metrics[0]
        self.device = default_device()
        self.model = model.to(self.device).train()
        model.config.use_cache = False  # as the Trainer sets it: the same config.json whichever loop trained
        self.packed = PackedClassifier(model)
        self.tokenizer, self.train_columns, self.dev = tokenizer, train, dev
        self.bf16 = use_bf16(self.t.bf16, "train", "train.bf16")
        self.ema = EMA(self.t.ema_decay) if self.t.ema_decay > 0 else None
        self.writer = engine_state.Writer(background=self.device.type == "cuda")
        self.state = engine_state.LoopState()
        self.best_weights: dict | None = None
        self.failure: str | None = None  # why the run cannot go on (lifecycle.loss_failure)
        self.stats: dict = {}
        self.board = _tensorboard(out / "logs")

    def prepare(self, checkpoint: Path | None) -> None:
        """Plan every step, restore a checkpoint, build the static batches, compile and capture the step."""
        started = time.perf_counter()
        self.clock = TrainClock(checkpoint)
        t, pad, sep = self.t, self.tokenizer.pad_token_id, sep_for(self.tokenizer)
        ids = encode_texts(self.tokenizer, texts_of(self.train_columns), self.cfg.data.max_length)
        self.plan = plan_run([len(x) for x in ids], t.batch_size, t.epochs, t.seed, t.max_steps,
                             t.packed_token_budget)
        self.eval_steps = max(1, self.plan.steps_per_epoch // t.evals_per_epoch)  # as training_arguments
        self.optimizer, self.schedule = build_optimizer(self.model, t, self.plan.total_steps, self.device)
        if warning := warmup_warning(self.schedule, t, self.plan.total_steps):
            log.warning(warning)
        self.losses = torch.zeros(self.plan.total_steps, device=self.device)
        if checkpoint is not None:
            self.state = engine_state.load(checkpoint, self.model, self.optimizer, self.schedule, self.ema,
                                           self.losses)
            if self.state.best_step is not None:
                from safetensors.torch import load_file

                self.best_weights = load_file(str(checkpoint_folder(self.out, self.state.best_step) /
                                                  engine_state.MODEL), device=str(self.device))
        elif self.ema is not None:
            self.ema.start(self.model)
        self.window = torch.tensor(self.state.window_loss, device=self.device)
        labels = self.train_columns["label"]
        first = self.state.step
        steps = range(first, self.plan.total_steps)
        self.batches = dict(zip(steps, batches_to([
            static_batch(ids, labels, self.plan.batches[i], self.plan.rows[i], self.plan.width, t.batch_size, pad,
                         sep) for i in steps], self.device)))
        dev_ids = encode_texts(self.tokenizer, texts_of(self.dev), self.cfg.data.max_length)
        self.eval_plan = eval_plan([len(x) for x in dev_ids], t.eval_batch_size)
        self.eval_batches = batches_to([static_batch(dev_ids, self.dev["label"], b, rows, self.eval_plan.width,
                                                     t.eval_batch_size, pad, sep)
                                        for b, rows in zip(self.eval_plan.batches, self.eval_plan.rows)], self.device)
        self.step = TrainStep(self.packed, self.optimizer, t, self.bf16, self.device)
        compiled = compile_setting(t.compile, self.device.type)
        if compiled and not compile_layers(self.packed):  # a 2-layer ModernBERT: its layers are two kinds
            log.info("engine: compile: no encoder layer shares its structure with another, so none is compiled")
            compiled = False
        capture, captured = None, time.perf_counter()
        if graphs.supported(self.device):
            examples = {self.plan.rows[i]: self.batches[i] for i in reversed(self.batches)}
            capture = {str(rows): how for rows, how in graphs.capture_step(self.step, examples, compiled).items()}
        now = time.perf_counter()  # one reading for both: capture_seconds <= prepare_seconds
        self.stats = {
            "row_tokens": self.plan.width,
            "step_shapes": {str(r): self.plan.rows.count(r) for r in self.plan.shapes},
            "eval_shapes": {str(r): self.eval_plan.rows.count(r) for r in self.eval_plan.shapes},
            "padding_fraction": round(1 - _real_tokens(ids, self.plan) / (sum(self.plan.rows) * self.plan.width), 4),
            "compile": compiled, "bf16": self.bf16, "cuda_graphs": capture,
            "prepare_seconds": round(now - started, 2),
            # of which compiling (on the warm-up steps) and capturing: the part of the wall a warm cache shortens
            "capture_seconds": round(now - captured, 2),
        }
        # without a capture (a CPU) the compiled layers compile on the first steps, inside train_seconds
        when = ("compiling in the first steps" if compiled and capture is None
                else f"{self.stats['capture_seconds']:.1f} s of it compiling and capturing")
        log.info("engine: %d steps on shapes %s (rows of %d tokens), compile %s, CUDA graphs %s; prepared in %.1f s "
                 "(%s)", self.plan.total_steps, self.stats["step_shapes"], self.plan.width, compiled, capture,
                 self.stats["prepare_seconds"], when)

    def train(self) -> dict:
        """The step loop, from the restored step to the end (or an early stop); returns what lifecycle.finish_run
        records about it."""
        from tqdm.auto import tqdm  # the progress bar the Trainer's ProgressCallback shows

        first = self.state.step
        self.bar = tqdm(total=self.plan.total_steps, initial=first, unit="step")
        sync()
        started = self.loop_started = self.clock.start()
        # resumed from the checkpoint of an early stop (killed while saving the model, or a signal at that step)
        last = first if self.state.stopped_early(self.t.early_stopping_patience) else self.plan.total_steps
        for i in range(first, last):
            loss, norm = self.step(self.batches.pop(i))
            self.losses[i] = loss
            self.window += loss
            self.schedule.step()
            self.state.step = i + 1
            if self.end_step(norm):
                break
        sync()
        seconds = time.perf_counter() - started
        self.bar.close()
        done = self.state.step - first
        log.info("engine: %d steps in %.2f s (%.2f ms a step, evaluations included)", done, seconds,
                 1000 * seconds / max(done, 1))
        waited, total = time.perf_counter(), self.plan.total_steps
        halted = stopping.requested(self.state.step, total) and self.failure is None  # end_step checkpointed it
        # Training is over, so these writes are not training time. A run that goes on to finish_run, which
        # removes the checkpoints, waits only for the one being written; a stopped run needs them all.
        dropped = self.writer.wait(drop_queued=not halted)
        if halted:
            raise stopped_run(self.out, total)
        self.stats["checkpoint_wait_seconds"] = round(time.perf_counter() - waited, 2)
        self.stats["checkpoints_dropped"] = dropped
        self.stats["checkpoint_blocked_seconds"] = round(self.writer.blocked_seconds, 2)  # inside train_seconds
        if self.best_weights is not None:  # the model saved is the best evaluated one (load_best_model_at_end)
            self.model.load_state_dict(self.best_weights)
        sentences = sum(len(b) for b in self.plan.batches[first : self.state.step])
        self.log({"train_runtime": round(seconds, 4),
                  "train_samples_per_second": round(sentences / max(seconds, 1e-9), 3),
                  "train_steps_per_second": round((self.state.step - first) / max(seconds, 1e-9), 3),
                  "train_loss": mean_logged_loss(self.state.log_history), "epoch": self._epoch()})
        return {"train_samples": len(self.train_columns["sentence"]), "train_seconds": round(seconds, 2),
                "train_seconds_before": self.clock.before,
                "train_samples_per_second": round(sentences / max(seconds, 1e-9), 2),
                "train_loss": mean_logged_loss(self.state.log_history), "steps": self.state.step,
                "epochs_trained": round(self._epoch(), 4),
                "best_step": self.state.best_step, "input_path": "packed", "engine": "engine", "bf16": self.bf16}

    def end_step(self, grad_norm: torch.Tensor) -> bool:
        """After optimizer step `state.step`: EMA, logging, evaluation, checkpoint, as the Trainer's callbacks
        order them. True when training stops early (early stopping, a signal asked for a stop, a NaN loss)."""
        step, t = self.state.step, self.t
        if self.ema is not None:
            self.ema.update(self.model, step)
        evaluate = step % self.eval_steps == 0 or step == self.plan.total_steps
        halt = stopping.requested(step, self.plan.total_steps)  # SIGTERM or Ctrl-C: checkpoint this step, stop
        save = step % self.eval_steps == 0 or (t.checkpoint_steps > 0 and step % t.checkpoint_steps == 0) or halt
        if self.ema is not None and (evaluate or save):
            self.ema.swap_in(self.model)
        if step % t.logging_steps == 0 or save or step == self.plan.total_steps:
            # at every checkpoint too: its log history then covers every step before it (as checkpoints.py)
            loss = float(self.window) / (step - self.state.last_logged)
            self.log({"loss": loss, "grad_norm": float(grad_norm),
                      "learning_rate": float(scheduled_lr(self.schedule, t.lr, step - 1)), "epoch": self._epoch()})
            self.window.zero_()
            self.state.last_logged = step
            # the host has waited for the device here: a stall between two entries (a checkpoint write) shows
            self.stats.setdefault("loop_seconds_at_logged_steps", []).append(
                [step, round(time.perf_counter() - self.loop_started, 3)])
            self.bar.update(step - self.bar.n)  # here, where the host has waited for the device: true progress
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self.failure = loss_failure("training loss", loss, step, self.plan.total_steps, t.lr)
        stop = False
        if evaluate and self.failure is None:
            metrics = self.evaluate()
            self.failure = loss_failure("dev loss", metrics["eval_loss"], step, self.plan.total_steps, t.lr)
            better, stop = self.state.judge(metrics[f"eval_{self.main_metric}"], t.early_stopping_patience)
            if better:  # the weights evaluated (the average, with an EMA): the model saved at the end
                self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if save and self.failure is None:  # a diverged model is not kept: train_engine ends the run
            best = checkpoint_folder(self.out, self.state.best_step) if self.state.best_step else None
            self.writer.submit(checkpoint_folder(self.out, step), engine_state.snapshot(
                self.model, self.optimizer, self.schedule, self.ema, self.state, self.losses, self.clock.so_far()),
                best)
        if self.ema is not None:
            self.ema.swap_out(self.model)
        return stop or halt or self.failure is not None

    def evaluate(self) -> dict:
        started = time.perf_counter()
        self.model.eval()
        logits = torch.cat([self.step.logits(batch)[: len(indices)]  # the real sentences, not empty slots
                            for batch, indices in zip(self.eval_batches, self.eval_plan.batches)])
        self.model.train()
        labels = torch.tensor(self.dev["label"], device=self.device)
        loss = float(self.step.loss(logits, labels))
        scores = classification_metrics(self.dev["label"], logits.argmax(-1).cpu().numpy(), logits.shape[-1])
        seconds = time.perf_counter() - started
        metrics = {"eval_loss": loss, **{f"eval_{k}": scores[k] for k in self.metrics},
                   "eval_runtime": round(seconds, 4),
                   "eval_samples_per_second": round(len(labels) / seconds, 3),
                   "eval_steps_per_second": round(len(self.eval_batches) / seconds, 3), "epoch": self._epoch()}
        self.log(metrics)
        return metrics

    def log(self, entry: dict) -> None:
        entry = {**entry, "step": self.state.step}
        self.state.log_history.append(entry)
        if self.board is not None:
            for key, value in entry.items():
                if key != "step" and isinstance(value, (int, float)):  # epoch: train/epoch, as the Trainer's
                    tag = f"eval/{key[5:]}" if key.startswith("eval_") else f"train/{key}"
                    self.board.add_scalar(tag, value, self.state.step)
            self.board.flush()

    def history(self) -> dict:
        """log_history.json: the Trainer path's entries, and the engine's shapes, timings and step losses."""
        losses = self.losses[: self.state.step].cpu().tolist()
        return {"log_history": self.state.log_history,
                "engine": {**self.stats, "step_losses": [round(x, 6) for x in losses]}}

    def _epoch(self) -> float:
        return self.state.step / self.plan.steps_per_epoch


def _real_tokens(ids: list[list[int]], plan) -> int:
    lengths = np.array([len(x) for x in ids])
    return int(sum(lengths[b].sum() for b in plan.batches))


def _tensorboard(folder: Path):
    """TensorBoard's writer, or None where the package is missing or fails to load: the logs are optional."""
    try:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(folder))
    except Exception as exc:  # noqa: BLE001 - missing, or broken (a protobuf its version cannot read)
        log.info("no TensorBoard logs in %s: tensorboard cannot be used (%s)", folder, exc)
        return None
