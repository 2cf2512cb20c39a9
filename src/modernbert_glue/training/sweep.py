"""`sweep`: a grid of learning rate × weight decay × epochs × seeds for one task, resumable, one run at a time on a
CPU or several at once on a GPU, with a results table and the config chosen as the paper chooses it.

Each (config, seed) is a `train` run in its own folder, DIR/<config>-seed-<S>, launched as its own process
(`modernbert-glue train`): a finished run is skipped, an interrupted one resumed (`train --resume`), so a sweep
stopped at any point continues where it was. A run that stopped for good (its training loss diverged: failure.json)
is not run again; it counts as failed in the table, and a config with a failed seed is not chosen. SIGTERM or
Ctrl-C starts no more runs, is sent on to those in progress (a container's stop reaches the launcher alone), which
checkpoint and stop, and waits for them (training/stopping.py). With `parallel` > 1 that many processes run at
once, each with its share of the CPU threads, and a new one starts only when the device (GPU memory, or RAM on a
CPU) has `memory_per_run_gb` free. timing.json holds each run's spans of wall time, one per launch that ran it.

Selection: the config with the best mean over seeds of the task's main dev metric (ties: the earlier config), among
the configs whose every seed finished.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import numbers
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import check_seeds
from ..errors import RunFailed, UserError, shown
from ..evaluation.runfolder import is_number, read_json
from ..locks import releases_on_error
from ..outputs import check_output, failure, open_output, read_marker
from . import stopping
from .sweep_summary import dev_value, config_name, summarise, table

log = logging.getLogger(__name__)

GRID_KEYS = {"lr": "train.lr", "wd": "train.weight_decay", "ep": "train.epochs"}
GRID_OPTIONS = {"lr": "--lr", "wd": "--weight-decay", "ep": "--epochs"}  # the sweep command's option of each
POLL_S = 0.5
RAMP_S = 60.0  # how long a new run may take to claim its memory


@dataclass
class SweepConfig:
    grid: dict[str, list[float]]  # GRID_KEYS name -> values
    seeds: list[int]
    train_args: list[str] = field(default_factory=list)  # everything else `train` is given (task, data, preset...)
    parallel: int = 1
    memory_per_run_gb: float = 4.0
    # The grid's weight decays are the paper's decoupled ones (composer's DecoupledAdamW): each run gets torch's
    # wd / lr of its own config (../shared/REFERENCE-GLUE.md).
    decoupled_weight_decay: bool = False

    def __post_init__(self):
        check_seeds(self.seeds, "sweep: --seeds")
        if not is_number(self.memory_per_run_gb) or not math.isfinite(self.memory_per_run_gb) \
                or self.memory_per_run_gb < 0:
            raise UserError(f"--memory-per-run-gb must be a number of at least 0, got {self.memory_per_run_gb!r}")
        unknown = sorted(set(self.grid) - set(GRID_KEYS))
        if unknown:
            raise UserError(f"sweep: unknown grid key(s) {', '.join(unknown)} (use {', '.join(GRID_KEYS)})")
        if not self.seeds:
            raise UserError("sweep: give at least one seed")
        if not isinstance(self.parallel, numbers.Integral) or isinstance(self.parallel, bool) or self.parallel < 1:
            raise UserError(f"--parallel must be a whole number of at least 1, got {self.parallel!r}")
        for key, values in self.grid.items():  # a weight decay may be 0 (none), as train.weight_decay
            if not values or any(not is_number(v) or not math.isfinite(v)
                                 or v < 0 or (v == 0 and key != "wd") for v in values):  # the API's may be any
                kind = "values of 0 or more" if key == "wd" else "positive values"
                raise UserError(f"sweep: {GRID_OPTIONS[key]} needs {kind}, got {values}")
        for name, values in (("seeds", self.seeds), *self.grid.items()):  # as train --seeds: a repeat is a typo
            if len(set(values)) != len(values):
                raise UserError(f"sweep: {GRID_OPTIONS.get(name, '--' + name)} repeats a value: "
                                f"{', '.join(f'{v:g}' for v in values)}")
        if self.decoupled_weight_decay and "wd" not in self.grid:
            raise UserError("sweep: --decoupled-weight-decay converts the grid's --weight-decay values; give them "
                            "(the preset's weight decay is torch's already)")
        names = [config_name(c) for c in configs(self)]
        if len(set(names)) != len(names):
            same = next(n for n in names if names.count(n) > 1)
            raise UserError(f"sweep: two configs are both named {same} (values that differ only past 6 significant "
                            "digits); give values that differ sooner")


def _given(args: list[str], dotted: str, option: str) -> str | None:
    """How `args` (train's) set a grid key, '--set train.lr' or '--lr', if they do: the grid's value would win
    silently (it comes later), and the run's config would not be what the user wrote."""
    for name, _, value in (item.partition(" ") for item in _options(args)):
        if "=" in name:  # --lr=1e-4, --set=train.lr=1e-4
            name, _, value = name.partition("=")
        if name == option:
            return option
        if name == "--set" and value.split("=")[0].strip() == dotted:
            return f"--set {dotted}"
    return None


def configs(cfg: SweepConfig) -> list[dict[str, float]]:
    keys = list(cfg.grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(cfg.grid[k] for k in keys))]


def run_state(folder: Path) -> str:
    marker = read_marker(folder)
    if marker is None:
        return "new"
    if marker.get("complete"):
        return "finished"
    return "failed" if failure(folder) is not None else "unfinished"


def _command(cfg: SweepConfig, config: dict, seed: int | None, folder: Path, threads: int) -> list[str]:
    cli = [sys.executable, "-m", "modernbert_glue.cli", "train"]
    if run_state(folder) == "unfinished":  # with this launch's threads (RESUME_MAY_CHANGE), its config otherwise
        return [*cli, "--resume", str(folder), "--set", f"train.threads={threads}"]
    sets = [f"{GRID_KEYS[k]}={v:.15g}" for k, v in train_values(cfg, config).items()]
    sets += [f"train.seed={seed}"] if seed is not None else []  # None: the caller gives --seeds
    if threads:
        sets.append(f"train.threads={threads}")
    return [*cli, *cfg.train_args, "--output-dir", str(folder), *(a for s in sets for a in ("--set", s))]


def train_values(cfg: SweepConfig, config: dict) -> dict:
    """The config's values as `train` takes them: a decoupled weight decay as torch's, wd / lr."""
    values = dict(config)
    if cfg.decoupled_weight_decay and "wd" in values:
        values["wd"] = values["wd"] / values["lr"]
    return values


def free_memory_gb() -> float:
    """Free memory where the runs train: the first visible GPU's (nvidia-smi: the launcher itself holds no CUDA
    context), else the machine's available RAM (also when nvidia-smi answers nothing usable)."""
    import shutil

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if shutil.which("nvidia-smi") and visible != "":  # "": the runs are on the CPU
        device = ["-i", visible.split(",")[0].strip()] if visible else []
        try:
            query = subprocess.run(["nvidia-smi", *device, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                                   capture_output=True, text=True, check=False, timeout=30)
            return float(query.stdout.split()[0]) / 1024
        except (subprocess.TimeoutExpired, ValueError, IndexError):  # "[N/A]", an error, a hang
            pass
    with open("/proc/meminfo") as f:
        info = dict(line.split(":", 1) for line in f)
    return int(info["MemAvailable"].split()[0]) / 2**20


@releases_on_error
def sweep(cfg: SweepConfig, output_dir: str) -> dict:
    """Run every (config, seed) not finished yet, `parallel` at a time; write sweep.json and sweep.md."""
    out_path = Path(output_dir)
    resuming = read_marker(out_path) is not None
    if not resuming and out_path.is_dir() and any(out_path.iterdir()):  # sweep has no --overwrite to suggest
        raise UserError(f"{out_path}: not empty, and not a sweep folder; give a new or empty --output-dir")
    check_output(out_path, "sweep", resume=resuming)  # before train --check's seconds
    jobs = [(config, seed, out_path / f"{config_name(config)}-seed-{seed}") for config in configs(cfg)
            for seed in cfg.seeds]
    if resuming:
        _check_same_sweep(out_path, cfg)
        for _, _, path in jobs:  # a damaged result stops the sweep before it touches its folder
            if run_state(path) == "finished":
                dev_value(path)
    else:
        _check_train_options(cfg, out_path)
    folder = open_output(out_path, "sweep", resume=resuming)
    folder.write_json("sweep-config.json", asdict(cfg))
    folder.claim(*(job[2].name for job in jobs))
    threads = max(1, (os.cpu_count() or 1) // cfg.parallel) if cfg.parallel > 1 else 0
    timing = _read_timing(out_path)
    pending = _left(jobs)
    running: list[tuple[subprocess.Popen, Path, float]] = []
    failed = []

    def forward(signum: int) -> None:  # each signal, to every run in progress (stopping.FORWARDED_ENV)
        for proc, _, _ in list(running):
            if proc.poll() is None:
                proc.send_signal(signum)

    with stopping.graceful_stop(forward):  # SIGTERM or Ctrl-C: start no more runs, stop those in progress
        while pending or running:
            for proc, path, started in list(running):
                if proc.poll() is not None:
                    running.remove((proc, path, started))
                    timing.setdefault(path.name, []).append([started, time.time()])
                    folder.write_json("timing.json", timing)  # as each run ends: a killed launcher keeps them
                    if proc.returncode != 0:
                        failed.append(path.name)
            if stopping.pending() and pending:
                log.warning("sweep: starting no more runs; waiting for the %d in progress to checkpoint and stop",
                            len(running))
                pending.clear()
            can_start = pending and len(running) < cfg.parallel
            # Runs started in the last minute may not hold their memory yet: count them as if they did.
            recent = sum(1 for _, _, started in running if time.time() - started < RAMP_S)
            if can_start and running and free_memory_gb() < cfg.memory_per_run_gb * (1 + recent):
                can_start = False  # wait for the device to have room
            if can_start and not stopping.pending():  # a signal may have come while free memory was read
                config, seed, path = pending.pop(0)
                log.info("sweep: %s (%d running, %d waiting)", path.name, len(running) + 1, len(pending))
                proc = subprocess.Popen(_command(cfg, config, seed, path, threads), stdout=subprocess.DEVNULL,
                                        env={**os.environ, stopping.FORWARDED_ENV: "1"})
                running.append((proc, path, time.time()))
                if (sig := stopping.requested_signal()) is not None:  # came before forward could see it
                    proc.send_signal(sig)
                continue
            time.sleep(POLL_S)
    if stopping.pending() and _left(jobs):  # the next launch resumes them; runs that finished anyway are summarised
        raise stopping.stopped(out_path, "after the runs in progress ended", "the same `modernbert-glue sweep` "
                               "command continues it")
    failed = [name for name in failed if run_state(out_path / name) != "failed"]  # a recorded outcome: in the table
    if failed:
        raise RunFailed(f"sweep: {len(failed)} run(s) failed: {', '.join(failed)} (each run's error is above, on "
                        "stderr; once its cause is fixed, the same command runs them again)")
    summary = summarise(jobs)
    if cfg.decoupled_weight_decay:  # what a user copies into `train` is torch's value, not the grid's
        summary["decoupled_weight_decay"] = True
        for row in [*summary["configs"].values(), *([summary["chosen"]] if summary["chosen"] else [])]:
            row["train_weight_decay"] = train_values(cfg, row["config"])["wd"]
    folder.write_json("sweep.json", summary)
    folder.write_text("sweep.md", table(summary))
    folder.finish()
    if summary["chosen"] is None:
        raise RunFailed(f"sweep: every config has a failed run, so none is chosen ({out_path / 'sweep.md'} shows "
                        "why; failure.json in each run folder)")
    return summary


def _left(jobs: list) -> list:
    """The jobs whose run has no outcome yet: new, or unfinished (resumed by the next launch)."""
    return [job for job in jobs if run_state(job[2]) not in ("finished", "failed")]


def _check_train_options(cfg: SweepConfig, out_path: Path) -> None:
    """`train --check` with the first run's command and every seed (each seed's --init-from 'DIR/seed-{seed}/model'
    resolved): options `train` refuses stop the sweep here, in one line, before its folder is made (the other
    runs differ only in grid values, checked by SweepConfig)."""
    for key in cfg.grid:  # a new sweep's: one started before this check continues with its options
        if given := _given(cfg.train_args, GRID_KEYS[key], GRID_OPTIONS[key]):
            raise UserError(f"sweep: {given} ({GRID_OPTIONS[key]} is in the grid) gives each run its value: "
                            f"leave out {given}")
    seeds = ",".join(map(str, cfg.seeds))
    proc = subprocess.run([*_command(cfg, configs(cfg)[0], None, out_path / "check", 0), "--seeds", seeds, "--check"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1].removeprefix("error: ")
        raise UserError(f"sweep: train refuses the runs' options: {last}")
    try:  # train --check prints one JSON object (its logging goes to stderr)
        steps = json.loads(proc.stdout)["config"]["train"]["max_steps"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"sweep: `train --check` with the runs' options printed no config (its output began "
                        f"{shown(proc.stdout[:40])})") from None
    if steps > 0 and len(cfg.grid.get("ep", ())) > 1:  # each epochs value would train the same run again
        raise UserError(f"sweep: train.max_steps={steps} ends every run at step {steps}, whatever its --epochs; "
                        "leave out max_steps or sweep one --epochs value")


def _check_same_sweep(out_path: Path, cfg: SweepConfig) -> None:
    """A sweep continues only with the arguments it started with, its finished runs reused. Its grid may change
    values and seeds (not which options it sweeps): new ones are run, dropped ones left out of the table, with a
    warning."""
    if not (out_path / "sweep-config.json").exists():  # stopped before writing it: before any run, too
        return
    saved = read_json(out_path / "sweep-config.json")
    if saved.get("decoupled_weight_decay") != cfg.decoupled_weight_decay:
        raise UserError(f"{out_path}: a sweep started with{'' if saved.get('decoupled_weight_decay') else 'out'} "
                        "--decoupled-weight-decay; continue it with the same options or give another --output-dir")
    before, now = [_options(list(map(_as_path, args))) for args in (saved.get("train_args") or [], cfg.train_args)]
    if before != now:  # a path however written (a trailing slash, absolute or not) is the same path
        gone, added = [a for a in before if a not in now], [a for a in now if a not in before]
        change = ", ".join([*(f"not {a}" for a in gone), *(f"now {a}" for a in added)]) or "their order"
        raise UserError(f"{out_path}: a sweep started with other options ({change}); continue it with the same "
                        "options or give another --output-dir")
    grid, seeds = saved.get("grid") or {}, saved.get("seeds") or []
    if set(grid) != set(cfg.grid):
        raise UserError(f"{out_path}: a sweep over {', '.join(GRID_OPTIONS[k] for k in grid) or 'no grid'}; continue "
                        "it over the same options (more values are fine) or give another --output-dir")
    dropped = [f"{GRID_OPTIONS[k]} {v:g}" for k, values in grid.items() for v in values if v not in cfg.grid[k]]
    dropped += [f"--seeds {s}" for s in seeds if s not in cfg.seeds]
    if dropped:  # a config given up on, say: allowed, but its runs stay out of the table, which the user should know
        log.warning("sweep: %s left out of this grid: the table leaves out their runs (their folders stay)",
                    ", ".join(dropped))


def _options(args: list[str]) -> list[str]:
    """Arguments as the options they give ("--task rte", "--random-init"), so that a change names its option."""
    options = []
    for arg in args:  # a value joins the option before it
        joins = options and options[-1].startswith("--") and " " not in options[-1] and not arg.startswith("--")
        options[-1:] = [f"{options[-1]} {arg}"] if joins else [*options[-1:], arg]
    return options


def _as_path(arg: str) -> str:
    """An argument naming a file or folder that exists, as its resolved path; any other argument as given."""
    return str(Path(arg).resolve()) if not arg.startswith("-") and Path(arg).exists() else arg


def _read_timing(out_path: Path) -> dict:
    """Run name -> [[start, end], ...] in epoch seconds (a file from before the spans were lists: one span)."""
    try:
        timing = json.loads((out_path / "timing.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {name: spans if all(isinstance(span, list) for span in spans) else [spans]
            for name, spans in timing.items() if isinstance(spans, list)}
