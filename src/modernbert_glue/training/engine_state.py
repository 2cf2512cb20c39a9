"""The engine's resumable state and its checkpoints (layout and rules: checkpoints.py).

A checkpoint-N folder the engine writes holds model.safetensors (the weights as evaluated: the EMA average when
there is one), optimizer.pt, ema.safetensors (ema.py), engine_state.pt (schedule, RNG states, the loop's
counters, log history and per-step losses) and `complete`, last. The data order needs nothing: it follows
from the seed and the step (budgets.py).

On a GPU a checkpoint costs the step loop only a copy on the device (`snapshot`); a background thread moves
it to the host and writes it while training goes on (Writer). Checkpoints exist only for resuming, so the loop
waits for writes only when several are queued, and at the end.
"""

from __future__ import annotations

import collections
import dataclasses
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoints import complete

MODEL = "model.safetensors"
OPTIMIZER = "optimizer.pt"
STATE = "engine_state.pt"


@dataclass
class LoopState:
    """The step loop's counters: what an exact continuation needs beyond weights and optimizer."""

    step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    patience: int = 0  # evaluations since the best one (early stopping)
    last_logged: int = 0
    window_loss: float = 0.0  # summed losses of the steps since `last_logged` (0 at every checkpoint: it logs)
    log_history: list[dict] = field(default_factory=list)

    def judge(self, accuracy: float, patience: int) -> tuple[bool, bool]:  # accuracy: the task's main metric
        """Record the dev accuracy of an evaluation at `step`, as the Trainer's best-checkpoint choice and
        EarlyStoppingCallback do (strictly better only): (a new best?, stop training?), stopping after `patience`
        evaluations in a row that were not better (0: never)."""
        better = self.best_metric is None or accuracy > self.best_metric
        if better:
            self.best_metric, self.best_step, self.patience = accuracy, self.step, 0
        else:
            self.patience += 1
        return better, self.stopped_early(patience)

    def stopped_early(self, patience: int) -> bool:
        """Whether early stopping has ended training: so too for a run resumed from the step where it did."""
        return 0 < patience <= self.patience


def _clone(obj):
    if torch.is_tensor(obj):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v) for v in obj)
    return obj


def _to_cpu(obj):
    if torch.is_tensor(obj):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def snapshot(model, optimizer, schedule, ema, state: LoopState, losses: torch.Tensor,
             seconds: float | None = None) -> dict:
    """Everything a checkpoint holds, copied on the device now (training may go on while it is written);
    `seconds`: the training seconds so far (checkpoints.TrainClock)."""
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    snap = {
        "model": _clone(model.state_dict()),
        "optimizer": _clone(optimizer.state_dict()),
        "ema": _clone(ema.state_tensors(model)) if ema is not None else None,
        "state": {"schedule": _clone(schedule.state_dict()), "rng": rng, "loop": dataclasses.asdict(state),
                  "losses": losses[: state.step].clone()},
        "seconds": seconds,
    }
    if losses.is_cuda:  # the copies above are queued on the training stream; the writer waits for them
        snap["ready"] = torch.cuda.Event()
        snap["ready"].record()
    return snap


def write(folder: Path, snap: dict, best: Path | None) -> None:
    """Write a snapshot to `folder`, then mark it complete and prune (checkpoints.complete)."""
    from safetensors.torch import save_file

    from .ema import STATE_FILE

    ready = snap.pop("ready", None)
    if ready is not None:  # to the host on a stream of its own: the training stream does not stop for it
        stream = torch.cuda.Stream()
        stream.wait_event(ready)
        with torch.cuda.stream(stream):
            snap = _to_cpu(snap)
    else:
        snap = _to_cpu(snap)
    shutil.rmtree(folder, ignore_errors=True)  # a folder left by a run killed while writing it
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in snap["model"].items()}, str(folder / MODEL))
    torch.save(snap["optimizer"], folder / OPTIMIZER)
    if snap["ema"] is not None:
        save_file({k: v.contiguous() for k, v in snap["ema"].items()}, str(folder / STATE_FILE))
    torch.save(snap["state"], folder / STATE)
    complete(folder, snap["state"]["loop"]["step"], best, snap["seconds"])


def load_weights(folder: Path, model) -> None:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(Path(folder) / MODEL), device=str(next(model.parameters()).device)))


def load(folder: Path, model, optimizer, schedule, ema, losses: torch.Tensor) -> LoopState:
    """Restore a checkpoint into the live objects (weights, optimizer, schedule, EMA, RNG, the step losses so
    far); returns the loop's state."""
    state = torch.load(folder / STATE, map_location="cpu", weights_only=False)
    load_weights(folder, model)  # the evaluated weights; with an EMA the live ones come from its state next
    if ema is not None:
        ema.load_state(folder, model)
    # load_state_dict replaces each group's settings with the saved ones: keep the live learning-rate tensor (on
    # the device, where a captured step reads it) with the saved value, and the live `capturable`.
    live = [(group["lr"], group["capturable"]) for group in optimizer.param_groups]
    optimizer.load_state_dict(torch.load(folder / OPTIMIZER, map_location="cpu", weights_only=False))
    for group, (lr, capturable) in zip(optimizer.param_groups, live):
        lr.copy_(group["lr"])
        group["lr"], group["capturable"] = lr, capturable
    schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["rng"]["cpu"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["rng"]["cuda"])
    loop = LoopState(**state["loop"])
    losses[: loop.step] = state["losses"].to(losses.device)
    return loop


class Writer:
    """Writes checkpoints in order: at once (CPU), or in a background thread (`background`, on a GPU) while
    training goes on. The loop does not wait for a write in progress: up to `max_pending` snapshots queue (each a
    copy of the weights and optimizer state in device memory: SST-2's paper run has four checkpoints, due every
    few seconds once steps are replayed, faster than a disk may write them); only beyond that it waits. A failed
    write is raised in the training thread by the next call."""

    def __init__(self, background: bool, max_pending: int = 4):
        self.background, self.max_pending = background, max_pending
        self.pending: collections.deque = collections.deque()  # (folder, snap, best), oldest first, being written
        self.changed = threading.Condition()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        # Time the step loop spent in submit (waiting for a free place, or writing in the foreground): part of
        # train_seconds, reported apart (log_history.json's engine entry) so a device run shows what it cost.
        self.blocked_seconds = 0.0

    def submit(self, folder: Path, snap: dict, best: Path | None) -> None:
        began = time.perf_counter()
        try:
            self._raise()
            if not self.background:
                write(folder, snap, best)
                return
            with self.changed:
                while len(self.pending) >= self.max_pending and self.error is None:
                    self.changed.wait()
                self.pending.append((folder, snap, best))
                if self.thread is None:
                    self.thread = threading.Thread(target=self._run, name="checkpoints", daemon=True)
                    self.thread.start()
        finally:
            self.blocked_seconds += time.perf_counter() - began
        self._raise()

    def wait(self, drop_queued: bool = False) -> int:
        """Until every submitted checkpoint is written; with `drop_queued`, only the one being written, the others
        are dropped (a finished run's checkpoints are removed anyway: lifecycle.finish_run). Returns how many
        were dropped."""
        with self.changed:
            dropped = len(self.pending) - 1 if drop_queued and self.pending else 0
            for _ in range(dropped):
                self.pending.pop()
            while self.pending and self.error is None:
                self.changed.wait()
        self._raise()
        return dropped

    def _run(self) -> None:
        while True:
            with self.changed:
                if not self.pending:
                    self.thread = None
                    return
                folder, snap, best = self.pending[0]
            try:
                write(folder, snap, best)
            except BaseException as exc:  # noqa: BLE001 - raised in the training thread by submit or wait
                with self.changed:
                    self.error, self.thread = exc, None
                    self.pending.clear()
                    self.changed.notify_all()
                return
            with self.changed:
                self.pending.popleft()
                self.changed.notify_all()

    def _raise(self) -> None:
        with self.changed:
            error, self.error = self.error, None
        if error is not None:
            raise error
