"""A run folder's life beyond one training call: several seeds in one folder, and resuming an unfinished run
(or seed set) with its saved config."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..config import RunConfig, check_ranges
from ..errors import RunFailed, UserError
from ..evaluation.runfolder import read_json
from ..locks import releases_on_error
from ..outputs import REPLACING, check_output, failure, open_output, read_marker
from ..ownership import with_article
from ..provenance import provenance
from ..run_paths import local_inputs, with_absolute_paths
from ..device import device_type, is_main_process
from . import stopping
from .dispatch import check_settings, choose, fallback_line, train, with_seed_paths
from .lifecycle import differences, fail_run, refuse_baseline

log = logging.getLogger(__name__)


# How a resumed run runs, not what it trains: a sweep resumes its runs with the threads of its new --parallel.
RESUME_MAY_CHANGE = ("train.threads",)


def config_for_resume(run_dir: str, requested) -> RunConfig:
    """The saved config of the unfinished run in `run_dir`; `requested(saved)` (the command's options applied
    to it, or None when it gave none) must not change it, but for RESUME_MAY_CHANGE, taken from it."""
    from ..config import config_from_dict

    saved = config_from_dict(read_json(Path(run_dir) / "run.json")["config"], source=f"{run_dir}/run.json")
    if requested is None:
        return saved
    # Compared as the runs read them: --init-from's {seed} filled in and a run folder taken for its model/ (a single
    # run saved them so; a seeds folder did not), then local paths absolute (a path given again may be relative)
    def as_read(cfg: RunConfig) -> dict:
        return with_absolute_paths(with_seed_paths(cfg)).to_dict()

    wanted = requested(saved)
    differ = [d for d in differences(as_read(saved), as_read(wanted)) if d[0] not in RESUME_MAY_CHANGE]
    if differ:
        shown = "; ".join(f"{key} is {a!r} there, {b!r} here" for key, a, b in differ[:4])
        raise UserError(f"{run_dir}: holds an unfinished run of another config ({shown}); resume it with the same "
                        "options (or none), or start a new run in another folder")
    for key in RESUME_MAY_CHANGE:  # the request's value of each
        section, name = key.split(".")
        changed = dataclasses.replace(getattr(saved, section), **{name: getattr(getattr(wanted, section), name)})
        saved = dataclasses.replace(saved, **{section: changed})
    return saved


def resume_training(run_dir: str, requested, seeds: list[int] | None) -> dict:
    """Continue an unfinished run folder or --seeds folder with its saved config (see config_for_resume)."""
    marker = read_marker(Path(run_dir))
    if marker is None:
        raise UserError(f"{run_dir}: not a run folder written by modernbert-glue; nothing to resume")
    if marker["kind"] == "sweep":
        raise UserError(f"{run_dir}: a sweep folder: the same `modernbert-glue sweep` command continues it")
    if marker["kind"] not in ("run", "seeds"):
        raise UserError(f"{run_dir}: {with_article(marker['kind'])} folder, not a run; nothing to resume")
    if marker.get("complete"):  # before comparing configs: a finished run is not "another config"
        what = "this run" if marker["kind"] == "run" else "these seeds"
        saved = _saved_seeds(run_dir) if seeds and marker["kind"] == "seeds" else seeds or []
        if other := set(saved) != set(seeds or []):  # not the --seeds asked for: they train into a new folder
            what = f"its seeds {_listed(saved)}"
        raise UserError(f"{run_dir}: {what} finished already; nothing to resume"
                        + (f" (--seeds {_listed(seeds)} go in a new --seeds folder)" if other else ""))
    if marker.get(REPLACING):  # its run.json may be gone: said before reading it
        raise UserError(f"{run_dir}: an --overwrite of it was cut short; nothing to resume (pass --overwrite)")
    if marker["kind"] == "run":
        if seeds:
            raise UserError(f"{run_dir}: a single run, not a --seeds folder; leave out --seeds")
        return train(config_for_resume(run_dir, requested), run_dir, resume=True)
    saved_seeds = _saved_seeds(run_dir)
    if seeds and set(seeds) != set(saved_seeds):  # the same seeds in another order are these
        raise UserError(f"{run_dir}: holds seeds {_listed(saved_seeds)}, not {_listed(seeds)}")
    return train_seeds(config_for_resume(run_dir, requested), run_dir, saved_seeds, resume=True)


def _saved_seeds(run_dir: str) -> list[int]:
    path = Path(run_dir) / "run.json"
    seeds = read_json(path).get("seeds", [])
    if not isinstance(seeds, list) or not all(type(seed) is int for seed in seeds):  # edited by hand
        raise UserError(f"{path}: 'seeds' is not a list of seeds")
    return seeds


def _listed(seeds: list) -> str:
    return ",".join(map(str, seeds))  # as --seeds takes them


def _with_seed(cfg: RunConfig, seed: int) -> RunConfig:
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))


def _check_seeds(cfg: RunConfig, seeds: list[int]) -> None:
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds needs distinct seeds, got {seeds}")
    for seed in seeds:
        check_ranges(_with_seed(cfg, seed), "--seeds")


def _inputs(cfg: RunConfig, seeds: list[int]) -> list[str]:
    """What the runs of these seeds read locally (each seed's --init-from among them)."""
    init_froms = [with_seed_paths(_with_seed(cfg, seed)).model.init_from for seed in seeds]
    return local_inputs(cfg.data, cfg.model.name, *dict.fromkeys(init_froms))


def check_inputs(cfg: RunConfig, seeds: list[int]) -> str | None:
    """What a run checks and reads before it opens its folder, read once for all seeds before the seeds folder is
    opened (with --overwrite: emptied), and what `train --check` does: the seeds, the engine, compile and bf16
    settings, the data, the model (or each seed's --init-from folder) with its overrides, and the input path
    and token budget for that model. A typo then costs one line, not a finished run. Returns why the engine
    would fall back to the Trainer (None: it would not)."""
    from ..data import load_run_data
    from ..inputs import check_token_budget, resolve_input_path
    from ..models import check_model
    from ..outputs import check_model_finished
    from ..tasks import task_for

    _check_seeds(cfg, seeds)
    check_settings(cfg, device_type())
    load_run_data(cfg.data)
    task = task_for(cfg.data)
    names = {with_seed_paths(_with_seed(cfg, seed)).model.init_from for seed in seeds} - {None, ""}
    for init_from in sorted(names):
        if not Path(init_from).is_dir():  # a run's folder, never a Hub id
            raise UserError(f"--init-from {init_from}: model folder not found")
        check_model_finished(init_from)
        refuse_baseline(init_from)
        _check_weights_file(init_from)
    if not names and not cfg.model.random_init:  # a local model folder with a config and no weights
        from ..models import resolve_model

        if not _has_weights(resolve_model(cfg.model.name)):
            raise UserError(f"model '{cfg.model.name}': no weights found (no {_weight_names()[0]}); use "
                            "--random-init to build it untrained")
    length = cfg.data.max_length
    configs = [check_model(name, task, cfg.model.overrides, option="--init-from", max_length=length)
               for name in sorted(names)] or [
        check_model(cfg.model.name, task, cfg.model.overrides, weights=not cfg.model.random_init, max_length=length)]
    model_type = configs[0].model_type
    engine, reason = choose(cfg, device_type(), 1, lambda: model_type)
    path = "packed" if engine == "engine" else resolve_input_path(cfg.train.input_path, model_type, "train",
                                                                  device_type(), "train.input_path")
    check_token_budget(cfg.train.packed_token_budget, path)
    return reason


def _check_weights_file(folder: str) -> None:
    """An --init-from folder without a weights file (an ONNX export, a config alone) is refused as the run would
    refuse it, without loading the weights."""
    if not _has_weights(folder):
        raise UserError(f"{folder}: cannot load a classifier from it (no weights file: {_weight_names()[0]})")


def _weight_names() -> tuple[str, ...]:
    from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_INDEX_NAME, WEIGHTS_NAME

    return SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_NAME, WEIGHTS_INDEX_NAME


def _has_weights(folder: str) -> bool:
    """True unless `folder` is a local folder without a weights file (a Hub id is downloaded by the run)."""
    return not Path(folder).is_dir() or any((Path(folder) / name).is_file() for name in _weight_names())


def check_training(cfg: RunConfig, output_dir: str | None, seeds: list[int] | None, *, overwrite: bool) -> dict:
    """`train --check`: what a run would refuse (check_inputs, and an output folder that is not new, empty or
    ours to --overwrite), refused now; nothing is written. Returns the resolved config."""
    if output_dir:
        check_output(Path(output_dir), "seeds" if seeds else "run", overwrite=overwrite,
                     inputs=_inputs(cfg, seeds or [cfg.train.seed]))
    if reason := check_inputs(cfg, seeds or [cfg.train.seed]):  # what the run would say, said now too
        log.warning(fallback_line(reason))
    return {"check": "ok", "config": cfg.to_dict()}


@releases_on_error
def train_seeds(cfg: RunConfig, output_dir: str, seeds: list[int], *, overwrite: bool = False,
                resume: bool = False) -> dict:
    """One run per seed in <output_dir>/seed-<n>/, then the mean ± std over seeds in seeds.json.

    With `resume`: finished seeds are kept, an unfinished one continues from its checkpoint, the rest run."""
    if resume:
        _check_seeds(cfg, seeds)
        check_settings(cfg, device_type())
    else:
        check_inputs(cfg, seeds)
    out = Path(output_dir)
    folder = None
    if is_main_process():
        marker = check_output(out, "seeds", overwrite=overwrite, resume=resume, inputs=_inputs(cfg, seeds))
        if resume and marker.get("complete"):
            raise UserError(f"{out}: these seeds finished already; nothing to resume")
        folder = open_output(out, "seeds", overwrite=overwrite, resume=resume)
        folder.claim(*(f"seed-{seed}" for seed in seeds))
        if not resume:
            folder.write_json("run.json", {"config": cfg.to_dict(), "seeds": seeds, **provenance()})
    runs = []
    with stopping.graceful_stop():  # a signal at a seed's last step stops the set after that seed
        for i, seed in enumerate(seeds, 1):
            seed_cfg = _with_seed(cfg, seed)
            seed_dir = out / f"seed-{seed}"
            state = _seed_state(seed_dir) if resume else "new"
            if state == "finished":
                log.info("seed %d finished already: %s", seed, seed_dir)
                runs.append(read_json(seed_dir / "metrics.json"))
                continue
            try:
                runs.append(train(seed_cfg, str(seed_dir), resume=state == "unfinished"))
            except RunFailed as failed:  # the set cannot be finished either: its mean would mix configs
                fail_run(folder, out, f"seed {seed}: {failure(seed_dir) or str(failed).split(': ', 1)[-1]}")
            if stopping.pending() and i < len(seeds):
                raise stopping.stopped(out, f"after seed {seed} finished ({i} of {len(seeds)} seeds)")
    if not is_main_process():
        return {}
    summary = summarise_seeds(runs, seeds)
    folder.write_json("seeds.json", summary)
    folder.finish()
    return summary


def summarise_seeds(runs: list[dict], seeds: list[int]) -> dict:
    """seeds.json's content from each seed's metrics.json (`runs`, in the order of `seeds`): per metric the mean,
    the sample std and a t-interval of the mean, and each seed's values. Also what `compare` reports for a sweep's
    chosen config."""
    import numpy as np

    from ..evaluation.metrics import CLASSIFICATION, REGRESSION

    metrics = (*CLASSIFICATION, *REGRESSION)
    keys = [f"{prefix}_{m}" for prefix in ("eval", "eval_mismatched", "test") for m in metrics] + ["train_seconds"]
    keys = [k for k in keys if k in runs[0]]
    summary = {"task": runs[0].get("task", "sst2"), "main_metric": runs[0].get("main_metric", "accuracy"),
               "model": runs[0].get("model"), "preset": runs[0].get("preset"), "seeds": seeds}  # (hand-edited files)
    for k in keys:
        if any(r.get(k) is None for r in runs):  # a metric too few dev rows give no value (with_too_few_as_none)
            summary.update({f"{k}_mean": None, f"{k}_std": None, **({f"{k}_mean_ci": None} if k != "train_seconds"
                                                                     else {})})
            continue
        values = np.array([r[k] for r in runs], dtype=float)
        summary[f"{k}_mean"] = float(values.mean())
        summary[f"{k}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None  # one seed: no spread known
        if k != "train_seconds":  # a t-interval of run times could reach below 0 (two seeds): not an estimate
            summary[f"{k}_mean_ci"] = mean_interval(values, metric=k)
    summary["per_seed"] = [{"seed": s, **{k: r.get(k) for k in keys}} for s, r in zip(seeds, runs)]
    return summary


def _seed_state(seed_dir: Path) -> str:
    marker = read_marker(seed_dir)
    if marker is None:
        return "new"
    return "finished" if marker.get("complete") else "unfinished"


def mean_interval(values, level: float = 0.95, metric: str | None = None) -> list[float] | None:
    """Student-t interval of the mean over seeds, clipped to what `metric` can take (metrics.metric_range: a
    t-interval of two seeds' accuracies reaches past 1); None for a single seed, or a seed without a value."""
    import numpy as np
    from scipy import stats

    from ..evaluation.metrics import clip_interval

    values = np.asarray(values, dtype=float)
    if values.size < 2 or not np.isfinite(values).all():
        return None
    half = stats.t.ppf((1 + level) / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    interval = [float(values.mean() - half), float(values.mean() + half)]
    return clip_interval(interval, metric) if metric else interval
