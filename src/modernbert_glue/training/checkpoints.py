"""Resumable training: full checkpoints in DIR/checkpoints/, which one to resume from, what to keep.

A checkpoint holds what an exact continuation needs: the weights, optimizer and scheduler, the RNG states and
the training state (step, best metric, log history, early-stopping counters; the data order follows from the
seed and the step) — written by the Trainer, or by the engine (engine_state.py) — plus the EMA state (the live
weights and their average) and a `complete` file written last (`complete` below), listing every file's size.
A checkpoint without that file was cut off while being written, and one whose files no longer have those sizes,
or do not read back, was damaged since: neither is resumed from; the previous complete one is kept until a newer
one is complete. It also records the training seconds up to its step over every launch (TrainClock), so that a
resumed run's train_seconds is its whole training's.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import time
from pathlib import Path

from transformers import TrainerCallback

from . import stopping

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
COMPLETE = "complete"
SECONDS = "train_seconds.json"
_NAME = re.compile(r"checkpoint-(\d+)$")


def checkpoint_step(path: str | Path | None) -> int | None:
    match = _NAME.search(str(path)) if path else None
    return int(match.group(1)) if match else None


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Complete and intact checkpoints of a run folder, oldest first."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.search(p.name) and (p / COMPLETE).is_file() and intact(p)]
    return sorted(found, key=checkpoint_step)


def _sizes(folder: Path) -> dict[str, int]:
    """The files a checkpoint needs, with their sizes: all but `complete` and the optional SECONDS (a damaged one
    only leaves the time before it unknown: checkpoint_seconds)."""
    return {str(f.relative_to(folder)): f.stat().st_size for f in sorted(folder.rglob("*"))
            if f.is_file() and f.name not in (COMPLETE, SECONDS)}


def intact(folder: Path) -> bool:
    """Whether every file the `complete` file lists still has its size (a file cut short or replaced since, on a
    full disk say, would make resuming fail halfway): a damaged checkpoint is passed over for an earlier one.
    A `complete` file without sizes (older versions) is trusted."""
    lines = (folder / COMPLETE).read_text(encoding="utf-8", errors="replace").splitlines()[1:]
    listed = dict(line.rsplit("\t", 1) for line in lines if "\t" in line)
    present = _sizes(folder)
    damaged = [name for name, size in listed.items() if str(present.get(name)) != size]
    if damaged:
        log.warning("%s is damaged (%s not as written): not resumed from", folder, ", ".join(damaged[:3]))
    return not damaged


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def resume_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint whose files read back (unreadable): what `--resume` starts from. A file
    damaged in place keeps its size; loading it was a JSON, safetensors or torch traceback halfway through."""
    for folder in reversed(complete_checkpoints(run_dir)):
        if (why := unreadable(folder)) is None:
            return folder
        log.warning("%s cannot be read back (%s): not resumed from", folder, why)
    return None


def unreadable(folder: Path) -> str | None:
    """Why a checkpoint's files do not read back, or None: JSON that does not parse, a safetensors header, or a
    torch file (a zip archive) not one or with a record that fails its CRC-32 (torch.save writes one per record:
    this reads every byte, about a second per GB, once per resume)."""
    import json
    import zipfile

    from safetensors import safe_open

    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name in (COMPLETE, SECONDS):
            continue
        try:
            if path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as tensors:
                    tensors.keys()
            elif path.suffix in (".pt", ".pth", ".bin"):
                with zipfile.ZipFile(path) as archive:
                    if (bad := archive.testzip()) is not None:
                        return f"{path.name}: {bad} fails its CRC"
        except Exception as exc:  # each reader fails its own way
            return f"{path.name}: {type(exc).__name__}"
    return None


def checkpoint_seconds(folder: Path | None) -> float | None:
    """The training seconds a checkpoint recorded up to its step, over the launches that led to it: 0.0 with no
    checkpoint (a fresh start), None where it recorded none (an older version wrote it)."""
    if folder is None:
        return 0.0
    try:
        value = json.loads((folder / SECONDS).read_text(encoding="utf-8"))["train_seconds"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if type(value) in (int, float) and math.isfinite(value) and value >= 0 else None  # not true


class TrainClock:
    """A run's training seconds: those its resumed checkpoint recorded, plus this launch's since `start` (the time
    between that checkpoint and a kill was trained again, so it is not counted twice)."""

    def __init__(self, checkpoint: Path | None):
        self.before = checkpoint_seconds(checkpoint)  # None: unknown, and so is every later total
        self.started: float | None = None

    def start(self) -> float:
        self.started = time.perf_counter()
        return self.started

    def launch(self) -> float:
        """This launch's seconds since start."""
        return time.perf_counter() - self.started if self.started is not None else 0.0

    def so_far(self) -> float | None:
        return None if self.before is None else self.before + self.launch()


class CheckpointCallback(TrainerCallback):
    """Saves every `every_steps` steps, and when a signal asks the run to stop, on top of the Trainer's saves at
    each evaluation; completes each
    checkpoint with the EMA state, and prunes: only the newest complete checkpoint and the best one stay."""

    def __init__(self, every_steps: int = 0, ema=None, clock: TrainClock | None = None):
        self.every_steps = every_steps
        self.ema = ema
        self.clock = clock

    def on_step_end(self, args, state, control, **kwargs):
        if self.every_steps and state.global_step % self.every_steps == 0:
            control.should_save = True
        if stopping.requested(state.global_step, state.max_steps):  # SIGTERM or Ctrl-C: checkpoint, stop
            control.should_save = control.should_training_stop = True
        if control.should_save:
            # Log the loss window up to here first, so the log history a checkpoint holds covers every step
            # before it and a resumed run's history (and mean training loss) is the uninterrupted run's.
            control.should_log = True

    def on_save(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if self.ema is not None:
            self.ema.save_state(folder, model)
        complete(folder, state.global_step, state.best_model_checkpoint, self.clock and self.clock.so_far())


def checkpoint_folder(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"checkpoint-{step}"


def complete(folder: Path, step: int, best: str | Path | None, seconds: float | None = None) -> None:
    """Record `seconds` (training seconds so far, TrainClock) and mark a fully written checkpoint complete (the file
    written last), then prune: only it and the best checkpoint stay."""
    if seconds is not None:
        (folder / SECONDS).write_text(json.dumps({"train_seconds": round(seconds, 3)}), encoding="utf-8")
    sizes = "".join(f"{name}\t{size}\n" for name, size in _sizes(folder).items())  # intact() checks them
    (folder / COMPLETE).write_text(f"{step}\n{sizes}")
    keep = {folder.resolve()} | ({Path(best).resolve()} if best else set())
    for old in folder.parent.iterdir():
        if _NAME.search(old.name) and old.resolve() not in keep:
            shutil.rmtree(old, ignore_errors=True)
