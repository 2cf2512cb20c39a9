"""A training run's folder from start to finish, the same whichever path trains (the HF Trainer or the engine):
refusing a folder before the slow part, opening it with run.json, and finishing it after training.

    model/               weights (safetensors), config with label names, tokenizer, inference.json, README.md
                         (the model card: modelcard.py); loads with transformers.pipeline("text-classification")
    metrics.json         dev metrics + timing (`finish_run`)
    run.json             resolved config, the training path, package versions, git commit, hardware, command
    predictions_dev.tsv, analysis_dev.json, misclassified_dev.tsv (and _test with --test-file): evaluation/runfolder.py
    log_history.json     logged losses, learning rates and evaluations
    logs/                TensorBoard event files
    checkpoints/         while training (checkpoints.py); removed once training succeeds
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

from ..config import RunConfig
from ..data import token_limit
from ..device import check_bf16, is_main_process, world_size
from ..errors import RunFailed, UserError
from ..evaluation.runfolder import evaluate_into, read_json
from ..inference.backends import Classifier
from ..model_overrides import size_overrides
from ..modelcard import model_card
from ..inference_settings import InferenceSettings
from ..models import tokenizer_for_pipeline
from ..outputs import OutputFolder, check_output, open_output
from ..provenance import device_name, provenance
from ..run_paths import init_from_folder, local_inputs
from . import stopping
from .checkpoints import CHECKPOINTS, checkpoint_step, latest_checkpoint

log = logging.getLogger(__name__)


def check_run(cfg: RunConfig, out: Path, *, overwrite: bool, resume: bool) -> dict:
    """Before any slow work: refuse an output folder `open_run` would refuse, apply the thread count, check
    bf16; returns the provenance record (taken now: the code and command this run actually used)."""
    import torch

    if is_main_process():
        marker = check_output(out, "run", overwrite=overwrite, resume=resume,
                              inputs=local_inputs(cfg.data, cfg.model.name, cfg.model.init_from))
        if resume and marker.get("complete"):
            raise UserError(f"{out}: this run finished already; nothing to resume")
    if resume and (started := read_json(out / "run.json").get("world_size")) not in (None, world_size()):
        # another count of processes gives other batches (the per-process batch size stays): another run
        how = "without torchrun" if started == 1 else f"with `torchrun --nproc_per_node {started}`"
        raise UserError(f"{out}: trained by {started} process(es), resumed by {world_size()}: resume it {how}")
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    check_bf16(cfg.train.bf16, "train.bf16")
    return provenance()


def open_run(cfg: RunConfig, out: Path, record: dict, engine: str, *, overwrite: bool, resume: bool,
             checkpoint: Path | None) -> OutputFolder | None:
    """Open the run folder (rank 0 only; None elsewhere) and write run.json: the resolved config and the
    training path before training starts, or, resuming, one more entry in its `resumed` list."""
    if not is_main_process():
        return None
    folder = open_output(out, "run", overwrite=overwrite, resume=resume)
    folder.claim(CHECKPOINTS, "logs")
    if resume:
        saved = read_json(out / "run.json")
        entry = {"from_step": checkpoint_step(checkpoint), "command": record["command"], "date": record["date"]}
        if changed := {key: now for key, _, now in differences(saved["config"], cfg.to_dict())}:  # RESUME_MAY_CHANGE
            entry["config_changes"] = changed
        record = {**saved, "resumed": [*saved.get("resumed", []), entry]}
        log.info("resuming %s from %s", out, checkpoint or "the start (no complete checkpoint yet)")
    else:
        record = {"config": cfg.to_dict(), "engine": engine, "world_size": world_size(), **record}
    folder.write_json("run.json", record)
    return folder


def differences(a: dict, b: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, value in a, value in b) for each setting two config dicts hold differently."""
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict) and key != "overrides":
            out += differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append((f"{prefix}{key}", x, y))
    return out


def base_model(model_cfg) -> tuple[str, bool, dict]:
    """(name, random_init, sizes) of the model a run's weights come from: --model, or with --init-from the base
    model that run recorded (its metrics.json beside the model folder: random weights stay random weights two runs
    on), else the --init-from folder itself. `sizes`: the size overrides it was built with (a 2-layer model),
    an --init-from run's recorded ones under this run's own."""
    own = _changing(size_overrides(model_cfg.overrides), model_cfg.init_from or model_cfg.name)
    if not model_cfg.init_from:
        return model_cfg.name, model_cfg.random_init, own
    try:
        earlier = read_json(Path(model_cfg.init_from).parent / "metrics.json")
        name, random_init = str(earlier["model"]), bool(earlier.get("random_init", False))
    except (OSError, ValueError, KeyError, UserError):
        return model_cfg.init_from, False, own
    recorded = earlier.get("model_sizes")
    return name, random_init, {**(recorded if isinstance(recorded, dict) else {}), **own}


def _changing(sizes: dict, model: str) -> dict:
    """The size overrides that change the model they apply to: num_hidden_layers=22 on modernbert-base (its own
    count) builds modernbert-base, one system with it (its config unread: all of them)."""
    from transformers import PretrainedConfig

    from ..models import resolve_model

    try:
        own = PretrainedConfig.get_config_dict(resolve_model(model))[0] if sizes else {}
    except (OSError, ValueError, UserError):
        return sizes
    return {key: value for key, value in sizes.items() if own.get(key) != value}


def refuse_baseline(folder: str) -> None:
    """--init-from takes a fine-tuned transformer's folder; a baseline's holds a scikit-learn pipeline."""
    from .baselines import is_baseline_folder

    if is_baseline_folder(folder):
        raise UserError(f"--init-from {folder}: a baseline's scikit-learn model; only a fine-tuned transformer's "
                        "weights can start a run")


def with_init_from_base(cfg: RunConfig, seeds: list[int] | None, *, model_given: bool,
                        random_init_given: bool) -> RunConfig:
    """With --init-from, the weights, architecture and tokenizer are that model's: the config takes the base
    model its run recorded (base_model) as model.name and model.random_init, so that run.json names the model
    the weights come from; a --model naming another, or a --random-init that run did not have, is refused
    rather than ignored. Unchanged without --init-from, or when that run recorded no base model."""
    import dataclasses

    if not cfg.model.init_from:
        return cfg
    folder = init_from_folder(cfg.model.init_from, (seeds or [cfg.train.seed])[0])  # every seed's: the same base
    refuse_baseline(folder)  # its metrics.json names the baseline as the model: the --model check would mislead
    name, random_init, _ = base_model(dataclasses.replace(cfg.model, init_from=folder))
    if name == folder:
        return cfg
    if model_given and not _same_model(cfg.model.name, name):
        raise UserError(f"--model {cfg.model.name}: --init-from {folder} was fine-tuned from {name}, whose "
                        "weights this run starts from; drop --model")
    if random_init_given and cfg.model.random_init and not random_init:
        raise UserError(f"--random-init: --init-from {folder} starts from trained weights of {name}; drop "
                        "--random-init")
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=name, random_init=random_init))


def _same_model(a: str, b: str) -> bool:
    """The same Hub id (an alias included), or the same local folder however its path is written."""
    from ..models import ALIASES

    a, b = ALIASES.get(a, a), ALIASES.get(b, b)
    return a == b or (Path(a).is_dir() and Path(b).is_dir() and Path(a).resolve() == Path(b).resolve())


def finish_run(folder: OutputFolder, cfg: RunConfig, task, model, tokenizer, eval_sets: dict, trained: dict,
               log_history: dict) -> dict:
    """After training: save model/ (the HF model, tokenizer and inference settings), evaluate it on every
    labelled set, write metrics.json and log_history.json, drop the checkpoints, mark the folder finished.
    `trained`: what the training path measured (train_samples, train_seconds, steps, ...). Returns metrics."""
    with stopping.stop_at_once(folder.path, "during the final evaluation and save"):
        metrics = _evaluate_and_save(folder, cfg, task, model, tokenizer, eval_sets, trained, log_history)
    with stopping.graceful_stop():  # a signal waits: stopped between the two, the run would lose its checkpoints
        shutil.rmtree(folder.path / CHECKPOINTS, ignore_errors=True)  # training succeeded: the best one is model/
        folder.finish()
    value = metrics[f"eval_{task.main_metric}"]  # None: too few dev rows for it (metrics.with_too_few_as_none)
    log.info("dev %s %s (%d examples); run folder %s", task.main_metric, "–" if value is None else f"{value:.4f}",
             metrics["eval_samples"], folder.path)
    return metrics


def _total_seconds(trained: dict) -> float:
    before = trained["train_seconds_before"]
    return trained["train_seconds"] if before is None else round(before + trained["train_seconds"], 2)


def _evaluate_and_save(folder: OutputFolder, cfg: RunConfig, task, model, tokenizer, eval_sets: dict, trained: dict,
                       log_history: dict) -> dict:
    out = folder.path
    settings = InferenceSettings.for_task(task, token_limit(tokenizer, cfg.data.max_length))  # what it was cut at
    clf = Classifier(model=model.eval(), tokenizer=tokenizer, settings=settings, bf16="off")
    name, random_init, sizes = base_model(cfg.model)
    metrics = {
        "task": task.name,
        "model": name,
        "random_init": random_init,
        "model_sizes": sizes,
        "init_from": cfg.model.init_from,
        "preset": cfg.preset,
        "main_metric": task.main_metric,
        **evaluate_into(folder, clf.scores, eval_sets, regression=task.regression, metrics=task.metrics),
        "train_samples": trained["train_samples"],
        # over every launch: the seconds its resumed checkpoint recorded (None: an older version wrote it, and
        # train_seconds is this launch's alone) plus this launch's; the rate is this launch's
        "train_seconds": _total_seconds(trained),
        "train_seconds_before": trained["train_seconds_before"],
        # a launch that resumed at the last step trained nothing: no rate (0.0 read as a measured one)
        "train_samples_per_second": None if trained["resumed_from_step"] == trained["steps"]
        else trained["train_samples_per_second"],
        "train_loss": trained["train_loss"],
        "epochs": cfg.train.epochs,
        **{key: trained[key] for key in ("epochs_trained", "steps", "best_step", "resumed_from_step")},
        "seed": cfg.train.seed,
        "device": device_name(),
        "world_size": world_size(),
        "input_path": trained["input_path"],
        "engine": trained["engine"],
        "bf16": trained["bf16"],  # what train.bf16 came to on this machine (auto, fast)
    }
    command = read_json(out / "run.json").get("command", "")
    with folder.staged_dir("model") as staged:
        model.save_pretrained(str(staged))
        tokenizer_for_pipeline(tokenizer, settings.max_length).save_pretrained(str(staged))
        settings.save(staged)
        (staged / "README.md").write_text(model_card(task, cfg, metrics, command, settings.max_length), encoding="utf-8")
    folder.write_json("metrics.json", metrics)
    folder.write_json("log_history.json", log_history)
    return metrics


def mean_logged_loss(log_history: list[dict]) -> float | None:
    """The mean training loss over every step, from the logged windows (each weighted by the steps it covers).

    Unlike the Trainer's own `train_loss`, which covers only the steps of its `train()` call, this is the same
    for a resumed run as for an uninterrupted one (every save is preceded by a log: checkpoints.py)."""
    total, last = 0.0, 0
    for entry in log_history:
        if "loss" in entry:
            total += entry["loss"] * (entry["step"] - last)
            last = entry["step"]
    return total / last if last else None


def loss_failure(what: str, loss: float, step: int, total: int, lr: float) -> str | None:
    """Both loops ask this of every logged training loss and every dev loss (`what`), before that step's
    checkpoint. Once either is NaN or infinite the model has diverged, and nothing after it is worth computing
    or keeping: the run stops for this reason (fail_run). (The Trainer's default, logging_nan_inf_filter, would
    log a NaN training loss as the mean of the earlier ones, often 0.0, and train on to a model that predicts
    one class.)"""
    if math.isfinite(loss):
        return None
    return (f"the {what} is {loss} at step {step} of {total}: the model diverged, so the run stopped (resuming "
            f"would repeat it). Start it again with --overwrite and a lower learning rate (train.lr is {lr:g}) or "
            f"more warmup")


def fail_run(folder: OutputFolder | None, out: Path, reason: str):
    """End a run that cannot go on: its folder records why (failure.json: a sweep counts it as failed, not
    unfinished; --resume and readers say why), and one line says it."""
    if folder is not None:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)  # even the last one's weights were never checked
        folder.fail(reason)
    raise RunFailed(f"{out}: {reason}")


def stopped_run(out: Path, total: int) -> UserError:
    """The error a run stopped by a signal ends with (both loops checkpointed the step they were in)."""
    return stopping.stopped(out, f"checkpointed at step {checkpoint_step(latest_checkpoint(out))} of {total}")
