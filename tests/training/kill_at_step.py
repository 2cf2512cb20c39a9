"""Run the real CLI, but SIGKILL the process at the end of training step $KILL_AT_STEP
(of the run whose folder contains $KILL_WITHIN) (a crash, as an
out-of-memory kill or a pre-empted machine would cause): no exception, no cleanup, no atexit handlers.
$KILL_SIGNAL sends another signal instead (SIGTERM: a scheduler asking the job to stop). KILL_AT_STEP=final sends
it as the final evaluation starts, after the last step.
Both training loops are covered: the Trainer's (after its step-end callback) and the engine's (after its
step-end bookkeeping: logging, evaluation, checkpoint)."""

import os
import signal
import sys

from modernbert_glue.cli import main
from modernbert_glue.training import checkpoints, engine, lifecycle

FINAL = os.environ["KILL_AT_STEP"] == "final"
KILL_AT_STEP = -1 if FINAL else int(os.environ["KILL_AT_STEP"])
KILL_WITHIN = os.environ.get("KILL_WITHIN", "")  # only the run whose checkpoint folder's path contains this
KILL_SIGNAL = signal.Signals[os.environ.get("KILL_SIGNAL", "SIGKILL")]
_step_end = checkpoints.CheckpointCallback.on_step_end
_engine_step_end = engine.EngineRun.end_step


def on_step_end(self, args, state, control, **kwargs):
    _step_end(self, args, state, control, **kwargs)
    if state.global_step == KILL_AT_STEP and KILL_WITHIN in args.output_dir:
        os.kill(os.getpid(), KILL_SIGNAL)


def end_step(self, grad_norm):
    stop = _engine_step_end(self, grad_norm)
    if self.state.step == KILL_AT_STEP and KILL_WITHIN in str(self.out):
        os.kill(os.getpid(), KILL_SIGNAL)
    return stop


def evaluate_into(folder, *args, **kwargs):
    if FINAL and KILL_WITHIN in str(folder.path):
        os.kill(os.getpid(), KILL_SIGNAL)
    return _evaluate_into(folder, *args, **kwargs)


_evaluate_into = lifecycle.evaluate_into
lifecycle.evaluate_into = evaluate_into
checkpoints.CheckpointCallback.on_step_end = on_step_end
engine.EngineRun.end_step = end_step

if __name__ == "__main__":
    sys.argv[0] = "modernbert-glue"
    main()
