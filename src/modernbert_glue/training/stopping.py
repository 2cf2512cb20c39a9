"""A graceful stop: SIGTERM (a scheduler preempting the job, `kill`) or a first Ctrl-C during the training steps
asks the loop (the Trainer's or the engine's) to checkpoint the step in progress and stop; `train --resume`
then continues from that step to the run an uninterrupted one gives. A second signal stops at once, as before.

transformers' own `enable_jit_checkpoint` is not used: it waits 3 s, may save in the middle of a step, and its
checkpoint lacks this project's `complete` record and EMA state (checkpoints.py), so resuming would pass it over.
Under torchrun the ranks could stop at different steps and wait for each other for ever: there, and outside the
main thread, signals keep their usual meaning, as does a signal the process was started ignoring (a background
job of a script ignores Ctrl-C). A signal at the last step changes nothing: the run finishes. A signal during the
final evaluation and save stops at once (stop_at_once). In a run a sweep started (FORWARDED_ENV set), a second
signal less than SAME_STOP_S after the first is the same request: the sweep sends the signal it gets on to its
runs, which may have had it already (Ctrl-C reaches the process group), and a run in a long step handles that copy
only when the step's operation returns. There the launcher, not the run, is the one to signal again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path

from ..device import world_size
from ..errors import UserError
from ..outputs import read_marker

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_requested: list[signal.Signals] = []  # the signal that asked for a stop, once one did
_depth = [0]  # graceful_stop contexts open: a seed set's around each seed's step loop
FORWARDED_ENV = "MODERNBERT_GLUE_FORWARDED_SIGNALS"  # set by sweep for its runs
SAME_STOP_S = 60.0
_last_handled = [-math.inf]  # time.monotonic() of the last signal a handler acted on


def requested(step: int, total: int) -> bool:
    """Whether a signal asked the step loop to checkpoint and stop after `step` (never after the last)."""
    return bool(_requested) and step < total


def pending() -> bool:
    """Whether a signal asked for a stop that no step loop has made (it came at or after a run's last step)."""
    return bool(_requested)


def _signals_caught() -> bool:
    return threading.current_thread() is threading.main_thread() and world_size() == 1


@contextlib.contextmanager
def _handling(handler):
    """Within: `handler(signum, restore)` receives SIGTERM and SIGINT (those the process was not started ignoring)."""
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    previous = {sig: handler for sig, handler in previous.items() if handler not in (signal.SIG_IGN, None)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    def handle(signum, frame) -> None:
        now = time.monotonic()
        if os.environ.get(FORWARDED_ENV) and now - _last_handled[0] < SAME_STOP_S:  # the group's and the forward
            return
        _last_handled[0] = now
        handler(signum, restore)

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        restore()


@contextlib.contextmanager
def graceful_stop(forward=None):
    """Within: SIGTERM and SIGINT ask for a stop (module docstring) instead of stopping at once; `forward(signum)`
    is called first with each (a sweep sends it on to its runs)."""
    if not _signals_caught():
        yield
        return

    def ask(signum, restore) -> None:
        if forward is not None:
            forward(signum)
        if _requested:  # the second signal: what it would have done without us
            restore()
            signal.raise_signal(signum)
            return
        _requested.append(signal.Signals(signum))
        log.warning("%s: checkpointing the step in progress (at the last step: finishing the run), then stopping "
                    "(send it again to stop at once)", signal.Signals(signum).name)

    if not _depth[0]:  # an outer context's request stands (a seed set stops after the seed that saw it)
        _requested.clear()
    _depth[0] += 1
    try:
        with _handling(ask):
            yield
    finally:
        _depth[0] -= 1


@contextlib.contextmanager
def stop_at_once(out: Path, where: str):
    """Within (a run's final evaluation and save, after its last checkpoint): a signal stops the run at once with
    `stopped`'s line and exit code, its folder unfinished; `train --resume` does that part again from the last
    checkpoint. Waiting for the end instead could outlast a scheduler's grace period, and the kill that follows
    would say nothing."""
    if not _signals_caught():
        yield
        return

    def stop(signum, restore) -> None:
        if raised:  # a second signal while the first's error unwinds: what it would have done without us
            restore()
            signal.raise_signal(signum)
            return
        raised.append(signum)  # the handler stays until the block is left: a forwarded copy is ignored there
        _requested.append(signal.Signals(signum))
        raise stopped(out, where)

    raised: list[int] = []
    with _handling(stop):
        yield


def requested_signal() -> signal.Signals | None:
    """The signal that asked for a stop, if one did."""
    return _requested[0] if _requested else None


def stopped(out: Path, where: str, how: str | None = None) -> UserError:
    """The error a stopped run, seed set or sweep ends with: one line saying where it stopped and `how` to continue
    (by default `train --resume`, of the seed set around a seed), and the signal's exit code (128 + its number:
    143 for SIGTERM, 130 for Ctrl-C)."""
    sig = _requested.pop()
    if how is None:
        marker = read_marker(out.parent)
        folder = out.parent if marker is not None and marker["kind"] == "seeds" else out  # resume the seed set
        how = f"`modernbert-glue train --resume {folder}` continues the run"
    error = UserError(f"{out}: stopped by {sig.name}, {where}: {how}")
    error.exit_code = 128 + int(sig)
    return error
