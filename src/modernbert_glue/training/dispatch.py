"""Which loop trains a run: the engine (engine.py) or the HF Trainer (trainer.py), by `train.engine`.

    auto     the engine on a GPU (where the Trainer is launch-bound), the Trainer on a CPU
    engine   the engine, on any device (how it is tested on CPU)
    trainer  the Trainer (DDP under torchrun, any model type)

A run the engine cannot train (more than one process, a model type packing does not support, batches other
than packed, a schedule that is not a function of the step) goes to the Trainer with one log line saying why.
A resumed run continues with the loop that started it (run.json's "engine"): their checkpoints differ.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from ..config import RunConfig
from ..device import check_bf16, device_type, is_main_process, world_size
from ..errors import UserError
from ..evaluation.runfolder import read_json
from ..inputs import PACKED_MODEL_TYPES, check_input_path
from ..locks import releases_on_error
from ..recipes import warm_start_missing
from ..run_paths import init_from_folder
from ..tasks import task_for
from .step import compile_setting

log = logging.getLogger(__name__)

ENGINES = ("auto", "engine", "trainer")


def unsupported(cfg: RunConfig, model_type: str | None, world_size: int) -> str | None:
    """Why the engine cannot train `cfg` (None when it can; an unknown model type is not a reason)."""
    t = cfg.train
    if world_size > 1:
        return f"WORLD_SIZE={world_size}: the engine trains in one process; DDP runs use the Trainer"
    if model_type is not None and model_type not in PACKED_MODEL_TYPES:
        return f"model type '{model_type}': the engine packs batches, which supports {', '.join(PACKED_MODEL_TYPES)}"
    if t.input_path not in ("auto", "packed"):
        return f"train.input_path = {t.input_path}: the engine trains on packed batches only"
    if cfg.data.regression or cfg.data.task == "stsb":
        return f"task {cfg.data.task}: regression; the engine trains classifiers"
    return None


def choose(cfg: RunConfig, device: str, world_size: int, model_type: Callable[[], str | None]) -> tuple[str, str | None]:
    """('engine' or 'trainer', why the engine was wanted but not chosen, else None). `model_type` is only asked
    when the engine is a candidate."""
    setting = check_settings(cfg, device)
    if setting == "trainer" or (setting == "auto" and device != "cuda"):
        return "trainer", None
    reason = unsupported(cfg, model_type(), world_size)
    return ("trainer", reason) if reason else ("engine", None)


def fallback_line(reason: str) -> str:
    return f"engine: {reason}; training with the HF Trainer instead"


def check_settings(cfg: RunConfig, device: str) -> str:
    """Refuse a wrong engine, compile, bf16, input path, label smoothing or scheduler value before any folder is opened or slow
    work done; returns the engine setting."""
    from transformers import SchedulerType

    setting = cfg.train.engine.strip().lower()
    if setting not in ENGINES:
        raise UserError(f"train.engine must be one of {', '.join(ENGINES)}, got '{cfg.train.engine}'")
    compile_setting(cfg.train.compile, device)
    check_bf16(cfg.train.bf16, "train.bf16")
    check_input_path(cfg.train.input_path, "train.input_path")
    if cfg.train.label_smoothing > 0 and task_for(cfg.data).regression:  # --check and --seeds said ok
        raise UserError(f"train.label_smoothing applies to classes; task {cfg.data.task} is a regression")
    if not _schedule_works(cfg.train.lr_scheduler):  # (an unknown name too: get_scheduler refuses it)
        schedulers = [kind.value for kind in SchedulerType if _schedule_works(kind.value)]
        raise UserError(f"train.lr_scheduler must be one of {', '.join(schedulers)}, got '{cfg.train.lr_scheduler}'")
    return setting


def _schedule_works(name: str) -> bool:
    """Whether a transformers schedule runs as the Trainer builds it here: a function of the step with warmup and no
    arguments of its own. Not the metric-driven ones (reduce_lr_on_plateau, greedy: no warmup, and they lower the
    rate on a metric rising, as a loss would not), nor those needing kwargs this tool does not pass
    (cosine_with_min_lr: a traceback mid-run)."""
    import torch
    from transformers import get_scheduler

    if name in ("reduce_lr_on_plateau", "greedy"):
        return False
    try:
        get_scheduler(name, torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), num_warmup_steps=1,
                      num_training_steps=10)
    except Exception:  # noqa: BLE001 - each schedule refuses missing arguments its own way
        return False
    return True


def model_type(cfg: RunConfig) -> str | None:
    """The model's type from its config, or None when the model cannot be resolved yet: the training path then
    says so itself, after checking the data (as it always has)."""
    from ..models import load_config, resolve_model
    from ..tasks import task_for

    try:
        name = cfg.model.init_from or cfg.model.name
        return load_config(resolve_model(name), task_for(cfg.data), cfg.model.overrides).model_type
    except UserError:
        return None


def warn_without_warm_start(cfg: RunConfig) -> None:
    """A paper-T run without the model the paper starts T from: a choice (an ablation), said, not refused."""
    if missing := warm_start_missing(cfg):
        log.warning("%s", missing)


def with_seed_paths(cfg: RunConfig) -> RunConfig:
    """`model.init_from` with `{seed}` replaced by this run's seed (with --seeds, each seed starts from the same
    seed's earlier model, e.g. RTE from runs/mnli/seed-{seed}/model, so the seeds stay independent), and a run
    folder taken for its model/ (init_from_folder)."""
    init_from = cfg.model.init_from
    if not init_from:
        return cfg
    folder = init_from_folder(init_from, cfg.train.seed)
    return cfg if folder == init_from else dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init_from=folder))


@releases_on_error
def train(cfg: RunConfig, output_dir: str, *, overwrite: bool = False, resume: bool = False) -> dict:
    """Train one run with the loop `choose` picks (or, resuming, the one that started it)."""
    cfg = with_seed_paths(cfg)
    world = world_size()
    engine, reason = choose(cfg, device_type(), world, lambda: model_type(cfg))
    if resume and (Path(output_dir) / "run.json").is_file():
        engine = read_json(Path(output_dir) / "run.json").get("engine", "trainer")
        reason = unsupported(cfg, model_type(cfg), world) if engine == "engine" else None
        if reason:
            raise UserError(f"{output_dir}: started by the engine, which cannot continue it here ({reason})")
    if reason and is_main_process():  # one line, not one per torchrun process
        log.warning(fallback_line(reason))
    if engine == "engine":
        from .engine import train_engine

        return train_engine(cfg, output_dir, overwrite=overwrite, resume=resume)
    from .trainer import train as train_trainer

    return train_trainer(cfg, output_dir, overwrite=overwrite, resume=resume)
