"""`modernbert-glue`'s entry point: logging set up, the command run, any UserError one line on stderr."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback

import typer

from .errors import MachineError, Terminated, as_user_error


def run_app(app) -> None:
    """Run the typer `app` (cli.py) as the `modernbert-glue` command."""
    level = os.environ.get("MODERNBERT_GLUE_LOG", "INFO").strip().upper() or "INFO"
    if not isinstance(logging.getLevelName(level), int):  # an unknown name: logging's own error is a traceback
        print(f"error: $MODERNBERT_GLUE_LOG: unknown level '{os.environ['MODERNBERT_GLUE_LOG']}' (use DEBUG, INFO, "
              "WARNING or ERROR)", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    threading.excepthook = thread_error
    from .readers import is_valid_unicode

    for arg in sys.argv[1:]:
        if not is_valid_unicode(arg):  # run.json, the model card, the logs record paths: refused before any write
            print(f"error: {ascii(arg)}: not valid UTF-8; give paths and texts in UTF-8", file=sys.stderr)
            sys.exit(2)
    try:
        # usage errors reach us, for one line; Ctrl-C comes back as typer's exit code 130, returned, not raised
        with terminated_on_sigterm():
            code = app(standalone_mode=False, prog_name="modernbert-glue")
    except Terminated as exc:
        _clear_frames(exc)  # progress bars left open print now, not after the line
        print("error: stopped by SIGTERM", file=sys.stderr)
        sys.exit(Terminated.exit_code)
    except typer.Abort:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:  # an unknown option or command, a value of the wrong type
        message = exc.format_message()
        if message:  # (none when the command was run bare: its help is already printed)
            print(f"error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - what is not a UserError or the machine's refusal is raised again
        error = as_user_error(exc)
        _clear_frames(exc)  # progress bars left open print now, not after the line
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    if isinstance(code, int) and code:
        if code == 130:
            print("error: interrupted", file=sys.stderr)
        sys.exit(code)


@contextlib.contextmanager
def terminated_on_sigterm():
    """Within: SIGTERM raises Terminated (a kill printed nothing and left a command's temporary folder behind);
    a training loop's graceful stop takes it over while it runs (training/stopping.py). Left alone where the
    process was started ignoring it, off the main thread, and under torchrun (its workers stop as it stops them)."""
    from .device import world_size

    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a copy (a sweep's forward, the process group's)
        raise Terminated()  # must not cut short the cleanup the first one started

    if threading.current_thread() is not threading.main_thread() or world_size() > 1 \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:  # the command is done (its output written): a SIGTERM while the interpreter tears down (a second or
        # so of torch's) would end it with 143 and no line, a finished command counted as failed
        signal.signal(signal.SIGTERM, signal.SIG_IGN if _is_the_process() else signal.SIG_DFL)


def _is_the_process() -> bool:
    """Whether this process is the `modernbert-glue` command itself (its console script or `python -m
    modernbert_glue.cli`), not a program that called it in-process (a test, a notebook)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", "") == "modernbert_glue.cli" or \
        os.path.basename(getattr(main, "__file__", "") or "") == "modernbert-glue"


def _clear_frames(exc: BaseException | None) -> None:
    """The frames of an error's traceback, and of the errors it was raised from (a library's write error that
    errors.naming named), cleared: what they hold (an open progress bar) is let go before the one line."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__


def thread_error(args) -> None:
    """A background thread's failure: the machine's refusal (tensorboard's event writer on a full disk) is one
    line, the main thread's own error then ends the command; anything else keeps Python's traceback, as the bug
    it is."""
    try:
        error = as_user_error(args.exc_value) if isinstance(args.exc_value, Exception) else None
    except Exception:  # noqa: BLE001 - as_user_error raises what it does not recognise
        error = None
    if isinstance(error, MachineError):
        print(f"warning: thread {args.thread.name if args.thread else '?'} stopped: {error}", file=sys.stderr)
        return
    threading.__excepthook__(args)
