"""Run the real CLI, but SIGKILL the process at the end of training step $KILL_AT_STEP
(of the run whose folder contains $KILL_WITHIN) (a crash, as an
out-of-memory kill or a pre-empted machine would cause): no exception, no cleanup, no atexit handlers."""

import os
import signal
import sys

from modernbert_glue.cli import main
from modernbert_glue.training import checkpoints

KILL_AT_STEP = int(os.environ["KILL_AT_STEP"])
KILL_WITHIN = os.environ.get("KILL_WITHIN", "")  # only the run whose checkpoint folder's path contains this
_step_end = checkpoints.CheckpointCallback.on_step_end


def on_step_end(self, args, state, control, **kwargs):
    _step_end(self, args, state, control, **kwargs)
    if state.global_step == KILL_AT_STEP and KILL_WITHIN in args.output_dir:
        os.kill(os.getpid(), signal.SIGKILL)


checkpoints.CheckpointCallback.on_step_end = on_step_end

if __name__ == "__main__":
    sys.argv[0] = "modernbert-glue"
    main()
