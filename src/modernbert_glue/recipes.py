"""The shipped recipes (presets/*.toml): where a preset's file is, which one a task gets when none is named, and
what the ModernBERT paper's GLUE protocol says around them (the round-2 warm start, the weight decay's convention)."""

from __future__ import annotations

import json
import logging
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import UserError
from .ownership import read_marker

log = logging.getLogger(__name__)

DEFAULT_PRESET = "paper"


def preset_path(preset: str) -> Path:
    """A preset name (``paper``) names a file shipped in the package; anything ending in .toml is a path."""
    if preset.endswith(".toml"):
        path = Path(preset)
        if not path.is_file():
            raise UserError(f"{preset}: preset file not found")
        return path
    path = Path(str(resources.files("modernbert_glue") / "presets" / f"{preset}.toml"))
    if not path.is_file():
        raise UserError(f"unknown preset '{preset}' (available: {', '.join(list_presets())}; or a .toml file, or "
                        "the folder of a `train` run)")
    return path


def preset_table(preset: str) -> tuple[str, dict[str, Any], str]:
    """(name, table, source) of a preset: a shipped name, a .toml path, or a `train` run's folder (or its run.json),
    whose saved config is the table — to train that run again, with another seed, folder or option on top — and
    whose recorded preset is the name (so that its runs and the new one are one system in `compare`). A shipped
    name wins over a folder of that name here (`./paper` names the folder)."""
    path = Path(preset)
    if not preset.endswith(".toml") and preset not in list_presets() and (path.is_dir() or path.name == "run.json"):
        if not path.exists():
            raise UserError(f"{path}: not found")
        return _run_preset(path.parent if path.name == "run.json" else path)
    path = preset_path(preset)
    try:
        return preset, tomllib.loads(path.read_text(encoding="utf-8-sig")), str(path)  # a BOM, as data files
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None


def _run_preset(folder: Path) -> tuple[str, dict[str, Any], str]:
    marker = read_marker(folder)
    if marker is None or marker["kind"] not in ("run", "seeds"):
        what = f"{marker['kind']} folder" if marker else "folder modernbert-glue did not write"
        raise UserError(f"{folder}: a {what}; a preset is a shipped preset's name, a .toml file or the folder of "
                        "a `train` run")
    source = folder / "run.json"
    try:
        record = json.loads(source.read_text(encoding="utf-8"))
        table = dict(record["config"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{source}: not a run's readable config ({type(exc).__name__})") from None
    if "train" not in table:
        raise UserError(f"{folder}: a baseline's run (`modernbert-glue baseline` fits it again), not a `train` run")
    if marker["kind"] == "seeds":  # its config's seed is the default, not one it trained
        log.info("%s: its runs' config; it trained seeds %s (--seeds trains them again)", folder,
                 ",".join(map(str, record.get("seeds") or [])))
    return str(table.pop("preset", DEFAULT_PRESET)), _as_recipe(table), str(source)


def _as_recipe(table: dict[str, Any]) -> dict[str, Any]:
    """A run's saved config as a recipe for other runs: without the threads it ran with (a sweep's share of the
    CPU: how it ran, not what it trained), and with an --init-from 'DIR/seed-{seed}/model' that the run saved filled
    in (DIR/seed-3/model for seed 3) made the template again, so that another --seed starts from its own seed's
    model, as the paper pairs them, rather than from this run's."""
    train, model = table.get("train"), table.get("model")
    if isinstance(train, dict):
        table = {**table, "train": {key: value for key, value in train.items() if key != "threads"}}
        seed, start = train.get("seed"), model.get("init_from") if isinstance(model, dict) else None
        if isinstance(seed, int) and isinstance(start, str) and f"seed-{seed}" in Path(start).parts:
            parts = ["seed-{seed}" if part == f"seed-{seed}" else part for part in Path(start).parts]
            table = {**table, "model": {**model, "init_from": str(Path(*parts))}}
    return table


def list_presets() -> list[str]:
    folder = resources.files("modernbert_glue") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


# Round 2 of the reference's GLUE protocol: these tasks start from the MNLI model (../shared/REFERENCE-GLUE.md).
PAPER_WARM_START = {"rte": "mnli", "mrpc": "mnli", "stsb": "mnli"}


def warm_start_missing(cfg) -> str | None:
    """What a paper-T preset run (`cfg`, a config.RunConfig) lacks when the paper starts T from another task's
    model and it names none."""
    start = PAPER_WARM_START.get(cfg.data.task)
    if start and cfg.preset == f"paper-{cfg.data.task}" and not cfg.model.init_from:
        return (f"preset {cfg.preset}: the paper starts {cfg.data.task} from the {start} model (--init-from "
                f"'runs/paper-{start}/seed-{{seed}}/model'); this run starts from {cfg.model.name}")
    return None


def default_preset(task: str | None) -> str:
    """The preset of a run that names none: the paper's recipe for its task (`paper-T`) where there is one, so that
    `train --task rte` does not train RTE with SST-2's rate and epochs; otherwise `paper` (SST-2's)."""
    name = f"paper-{task}" if task else DEFAULT_PRESET
    return name if name in list_presets() else DEFAULT_PRESET


def is_paper_preset(preset: str) -> bool:
    """`paper` or a `paper-T` shipped with the package (a user's own paper-x.toml is theirs, not the paper's)."""
    return preset.startswith("paper") and preset in list_presets()


def check_preset_task(preset: str, its_task: str, task: str | None) -> None:
    """A `paper-T` preset is T's recipe: another --task would train it with T's rate, decay and epochs."""
    if is_paper_preset(preset) and preset != DEFAULT_PRESET and task not in (None, its_task):
        other = default_preset(task)
        raise UserError(f"--preset {preset} is the paper's {its_task} recipe, not {task}'s: pass --preset {other}"
                        + ("" if other != DEFAULT_PRESET else " (SST-2's recipe) or your own .toml"))


def warn_decay_kept(preset: str, lr: float, weight_decay: float, new_lr: float) -> None:
    """torch's decay is the paper's decoupled one divided by the peak lr: another lr with the same value is another
    decay than the paper's (what a user changing only --lr rarely means)."""
    published = weight_decay * lr
    log.warning(
        "preset %s: its weight decay %g is torch's value for lr %g (the paper's decoupled %g); at lr %g it is a "
        "decoupled %g: pass --weight-decay %g to keep the paper's", preset, weight_decay, lr, published, new_lr,
        weight_decay * new_lr, published / new_lr)
