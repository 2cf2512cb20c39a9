"""Fine-tune with the Hugging Face Trainer; the run folder it writes is lifecycle.py's (the engine's too).

Runs unchanged under `torchrun`/`accelerate launch`: the Trainer handles DDP; only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from pathlib import Path

from transformers import TrainerCallback

from ..config import RunConfig
from ..data import load_run_data, tokenize
from ..device import cpu_attention_kernel, cuda, device_type, is_main_process, use_bf16, world_size
from ..errors import naming
from ..evaluation.runfolder import read_json
from ..evaluation.metrics import task_metrics
from ..inputs import Collator, resolve_input_path, sep_for
from ..models import build_classifier
from ..tasks import Task
from .checkpoints import (
    CHECKPOINTS,
    CheckpointCallback,
    TrainClock,
    checkpoint_step,
    resume_checkpoint,
)
from . import stopping
from .lifecycle import (
    check_run,
    fail_run,
    finish_run,
    loss_failure,
    mean_logged_loss,
    open_run,
    stopped_run,
)

log = logging.getLogger(__name__)


def training_arguments(cfg: RunConfig, out: Path, n_train: int, input_path: str, task: Task):
    from transformers import TrainingArguments

    t = cfg.train
    steps_per_epoch = max(1, math.ceil(n_train / (t.batch_size * world_size())))
    eval_steps = max(1, steps_per_epoch // max(1, t.evals_per_epoch))
    return TrainingArguments(
        output_dir=str(out / CHECKPOINTS),
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
        bf16=use_bf16(t.bf16, "train", "train.bf16"),
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_only_model=False,  # optimizer, scheduler and RNG states too: a run can resume (checkpoints.py)
        save_total_limit=None,  # CheckpointCallback prunes, once a newer checkpoint is complete
        load_best_model_at_end=True,
        metric_for_best_model=task.main_metric,
        greater_is_better=True,
        train_sampling_strategy="group_by_length" if input_path == "grouped" else "random",
        remove_unused_columns=input_path != "packed",  # the packed model takes `packed`, not input_ids
        logging_steps=t.logging_steps,
        logging_nan_inf_filter=False,  # a NaN loss is logged as it is, and stops the run (LossCheck)
        report_to="none",  # TensorBoard is attached explicitly so its logs land in <out>/logs
        ddp_backend="gloo" if world_size() > 1 and not cuda() else None,
        ddp_find_unused_parameters=False,
        dataloader_pin_memory=cuda(),
        use_cpu=not cuda(),
    )


def train(cfg: RunConfig, output_dir: str, *, overwrite: bool = False, resume: bool = False) -> dict:
    """Fine-tune `cfg.model` on `cfg.data` with the HF Trainer, evaluate on dev, save everything; returns
    metrics.json's content. With `resume`, continue the unfinished run in `output_dir` from its newest
    complete checkpoint."""
    from transformers import Trainer, set_seed
    from transformers.integrations import TensorBoardCallback

    out = Path(output_dir)
    record = check_run(cfg, out, overwrite=overwrite, resume=resume)
    from datasets import Dataset

    task, train_columns, eval_sets = load_run_data(cfg.data)
    dev_columns = eval_sets["dev"]

    set_seed(cfg.train.seed)
    model, tokenizer = build_classifier(
        cfg.model.name, task, random_init=cfg.model.random_init, overrides=cfg.model.overrides,
        init_from=cfg.model.init_from, max_length=cfg.data.max_length,
    )
    if cfg.train.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    input_path = resolve_input_path(cfg.train.input_path, model.config.model_type, "train", device_type(),
                                    "train.input_path")
    collator = Collator(input_path, tokenizer.pad_token_id, cfg.data.max_length, cfg.train.packed_token_budget,
                        sep_id=sep_for(tokenizer))
    train_ds = tokenize(Dataset.from_dict(train_columns), tokenizer, cfg.data.max_length)
    dev_ds = tokenize(Dataset.from_dict(dev_columns), tokenizer, cfg.data.max_length)
    if input_path == "packed":
        from ..packing import PackedClassifier

        model = PackedClassifier(model)
    log.info("input path: %s", input_path)

    checkpoint = resume_checkpoint(out) if resume else None
    folder = open_run(cfg, out, record, "trainer", overwrite=overwrite, resume=resume, checkpoint=checkpoint)

    ema = None
    callbacks = []
    if is_main_process():
        from torch.utils.tensorboard import SummaryWriter

        callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(out / "logs"))))
    if cfg.train.ema_decay > 0:
        from .ema import EMACallback

        ema = EMACallback(cfg.train.ema_decay, resume_from=checkpoint)
    loss_check = LossCheck(cfg.train.lr)
    callbacks += [loss_check, WarmupCheck(cfg.train)]
    clock = TrainClock(checkpoint)
    callbacks.append(CheckpointCallback(cfg.train.checkpoint_steps, ema, clock))  # before EMA: it asks for saves
    if ema is not None:
        callbacks.append(ema)
    patience = cfg.train.early_stopping_patience
    stopper = early_stopping(patience, checkpoint) if patience > 0 else None
    callbacks += [stopper] if stopper else []

    args = training_arguments(cfg, out, len(train_ds), input_path, task)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=dev_ds,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=metrics_for(task),
        callbacks=callbacks,
        optimizer_cls_and_kwargs=optimizer_with_groups(args, model, cfg.train),
    )
    clock.start()
    if stopper and stopper.early_stopping_patience_counter >= patience:  # resumed where early stopping ended it
        result = _finish_stopped(trainer, checkpoint)  # (killed while saving the model, or a signal at that step)
    else:
        with contextlib.redirect_stdout(sys.stderr), cpu_attention_kernel(cfg.train.cpu_flash_attention), \
                stopping.graceful_stop(), naming(out / CHECKPOINTS, os_errors=False):  # stdout: results alone
            result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    train_seconds = clock.launch()
    if loss_check.failure is not None:
        fail_run(folder, out, loss_check.failure)
    if stopping.requested(trainer.state.global_step, trainer.state.max_steps):  # (CheckpointCallback's stop)
        raise stopped_run(out, trainer.state.max_steps)
    if not trainer.is_world_process_zero():
        return {}

    trained = {
        "train_samples": len(train_ds),
        "train_seconds": round(train_seconds, 2),
        "train_seconds_before": clock.before,
        # the sentences HF counts (epochs × samples, this launch's) over our own clock, as train_seconds
        "train_samples_per_second": round(result.metrics.get("train_samples_per_second", 0.0) *
                                          result.metrics.get("train_runtime", 0.0) / max(train_seconds, 1e-9), 2),
        "train_loss": mean_logged_loss(trainer.state.log_history),
        "steps": trainer.state.global_step,
        "epochs_trained": round(trainer.state.epoch or 0.0, 4),  # fewer than train.epochs: max_steps, early stopping
        "best_step": checkpoint_step(trainer.state.best_model_checkpoint),
        "resumed_from_step": checkpoint_step(checkpoint),
        "input_path": input_path,
        "engine": "trainer",
        "bf16": bool(args.bf16),
    }
    summary = next((e for e in reversed(trainer.state.log_history) if "train_loss" in e), None)
    if checkpoint is not None and summary is not None:  # HF's covers this launch's steps: the whole run's, as metrics
        summary.update(train_loss=trained["train_loss"], train_loss_last_launch=summary["train_loss"])
    hf_model = trainer.model.model if input_path == "packed" else trainer.model
    return finish_run(folder, cfg, task, hf_model, tokenizer, eval_sets, trained,
                      {"log_history": trainer.state.log_history})


def _finish_stopped(trainer, checkpoint: Path):
    """The end of a run that early stopping ended at `checkpoint`: its state and best model, as the Trainer's own
    end of training leaves them. Resuming would first train a step (the Trainer looks at a stop after each)."""
    from transformers import TrainerState
    from transformers.trainer_utils import TrainOutput

    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    if trainer.args.load_best_model_at_end and trainer.state.best_model_checkpoint is not None:
        trainer._load_best_model()  # load_best_model_at_end, as Trainer.train ends
    return TrainOutput(trainer.state.global_step, 0.0, {})


class LossCheck(TrainerCallback):
    """lifecycle.loss_failure on every logged training loss and every dev loss. The Trainer logs, then evaluates,
    then saves: a failed loss stops the loop before the save, and `train` ends the run (fail_run) once the
    Trainer has closed its progress bar."""

    def __init__(self, lr: float):
        self.lr = lr
        self.failure: str | None = None

    def _check(self, what: str, loss, state, control) -> None:
        if loss is not None and self.failure is None:
            self.failure = loss_failure(what, loss, state.global_step, state.max_steps, self.lr)
        if self.failure is not None:
            control.should_training_stop = True
            control.should_evaluate = control.should_save = False

    def on_log(self, args, state, control, logs=None, **kwargs):
        self._check("training loss", (logs or {}).get("loss"), state, control)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._check("dev loss", (metrics or {}).get("eval_loss"), state, control)


class WarmupCheck(TrainerCallback):
    """step.warmup_warning once the Trainer has built its schedule for the run's steps."""

    def __init__(self, t):
        self.t = t

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        from .step import warmup_warning

        if state.is_world_process_zero and (warning := warmup_warning(lr_scheduler, self.t, state.max_steps)):
            log.warning(warning)  # (once, not once per process)


def early_stopping(patience: int, checkpoint: Path | None):
    """EarlyStoppingCallback, resumed with the count of evaluations without a better metric that `checkpoint`
    saved: the Trainer writes it to trainer_state.json but restores it only under
    restore_callback_states_from_checkpoint, which restores its TrainerControl too."""
    from transformers import EarlyStoppingCallback

    callback = EarlyStoppingCallback(early_stopping_patience=patience)
    if checkpoint is not None:
        saved = read_json(checkpoint / "trainer_state.json").get("stateful_callbacks", {}).get("EarlyStoppingCallback")
        saved = saved[0] if isinstance(saved, list) and saved else saved
        if isinstance(saved, dict):
            callback.early_stopping_patience_counter = int(saved.get("attributes", {}).get(
                "early_stopping_patience_counter", 0))
    return callback


def optimizer_with_groups(args, model, t):
    """The Trainer's own optimizer class and options with our parameter groups (step.parameter_groups), when
    they differ from its own (train.classifier_lr_scale, train.decay_norms_and_biases); None leaves the Trainer's
    choice untouched."""
    if t.classifier_lr_scale == 1 and not t.decay_norms_and_biases:
        return None
    from transformers import Trainer

    from .step import parameter_groups

    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    return cls, {**kwargs, "params": parameter_groups(model, t)}


def metrics_for(task: Task):
    """The Trainer's compute_metrics for `task`: its metrics from the dev logits."""

    def compute(eval_pred) -> dict:
        logits, labels = eval_pred
        predictions = logits[:, 0] if task.regression else logits.argmax(axis=-1)
        m = task_metrics(labels, predictions, regression=task.regression, num_labels=task.num_labels)
        return {name: m[name] for name in task.metrics}  # RTE's accuracy alone, as its metrics.json has

    return compute
