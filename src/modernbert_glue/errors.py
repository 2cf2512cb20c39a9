"""Errors a user can fix. The CLI prints them as one line: exit code 2 for the input or the options, 1 for a run
that failed on the way (the machine refused a write, the training loss diverged)."""

from __future__ import annotations

import contextlib
import errno
import os
import re


class UserError(Exception):
    """Bad input, a missing file, a refused action: anything the user can correct."""

    exit_code = 2


class MachineError(UserError):
    """The machine refused a write or read: no bug to trace back, and nothing the input did."""

    exit_code = 1


class RunFailed(UserError):
    """A run that started and cannot go on (its training loss is no longer a number)."""

    exit_code = 1


class Terminated(BaseException):
    """SIGTERM where no graceful stop handles it (any command but a training loop; cli_main): it unwinds as
    Ctrl-C does, so temporary files go and folders are unlocked, and ends in one line with exit code 143. Not an
    Exception: no `except Exception` takes it for an error of its own."""

    exit_code = 143  # 128 + SIGTERM, the code a shell reports for a process SIGTERM killed


def shown(value) -> str:
    """A value the user passed, inside an error line: its repr if short (None, 3, ('a', 1)), a long text cut, else
    its type (a loaded model's repr is pages)."""
    text = repr(value)
    if len(text) <= 60 and "\n" not in text:
        return text
    return cut(text) if isinstance(value, str) else f"a {type(value).__name__}"


def cut(text: str, most: int = 60) -> str:
    """`text`, or its start and '...' when longer than `most` characters."""
    return text if len(text) <= most else text[: most - 3] + "..."


def first_line(exc: Exception) -> str:
    """A library's error in a few words, for inside our one line: its message's first line, or its type."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# A full disk or quota, a file too large, a read-only file system, a failing device: raised from deep inside torch,
# transformers or our own writers, wherever the disk happens to give out.
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
MACHINE_ERRNOS = _NO_ROOM | {errno.EROFS, errno.EIO}
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # safetensors' and tokenizers' I/O errors carry only this
_TORCH_WRITE = re.compile(r"PytorchStreamWriter failed writing|unexpected pos \d+ vs \d+")  # torch.save's (no errno)


# A rerun of a folder command meets the folder it left unfinished: --overwrite replaces it, --resume continues a run.
AGAIN = ("make room and run the command again (`train --resume` continues a run; --overwrite replaces what another "
         "command left)")


def as_user_error(exc: Exception) -> UserError:
    """The one line the CLI prints for `exc`: a UserError as it is; a name too long or a permission denied as the
    user's input; an OSError
    of MACHINE_ERRNOS (or safetensors' error with one of their numbers) as what it hit and where; torch.save's failed write as such; anything else
    is raised again, with its traceback, as the bug it is."""
    if isinstance(exc, UserError):
        return exc
    number, where, what = None, "", str(exc)
    if isinstance(exc, OSError):
        # a path may come as bytes (tensorboard's event writer): shown as the path, not as b'...'
        number, where, what = exc.errno, f"{os.fsdecode(exc.filename)}: " if exc.filename else "", exc.strerror or str(exc)
    elif (rust := _rust_errno(exc)) is not None:
        number = rust
    elif _is_torch_write(exc):
        return MachineError(_torch_write(exc))
    if number == errno.ENAMETOOLONG:  # a path the user typed
        return UserError(f"{where}{what} (a file or folder name is limited to 255 bytes)")
    if number in (errno.EACCES, errno.EPERM):  # a file or folder the user's permissions keep us from
        return UserError(f"{where}{what}: give this user access to it, or name another")
    if number in _NO_ROOM:
        return MachineError(f"{where}{what}; {AGAIN}")
    if number in MACHINE_ERRNOS:
        return MachineError(f"{where}{what}; the file system refused it: fix it, or use another folder")
    raise exc


def _rust_errno(exc: Exception) -> int | None:
    """The errno of safetensors' or tokenizers' I/O error (its message's "(os error N)"), else None."""
    return int(match.group(1)) if (match := _RUST_OS_ERROR.search(str(exc))) else None


def _is_torch_write(exc: Exception) -> bool:
    return isinstance(exc, RuntimeError) and bool(_TORCH_WRITE.search(str(exc)))


def _torch_write(exc: Exception) -> str:
    return (f"torch could not write a file ({str(exc).splitlines()[-1].strip()}); is the disk full? "
            f"{AGAIN[0].upper()}{AGAIN[1:]}")


@contextlib.contextmanager
def naming(folder, *, os_errors: bool = True):
    """A write error that names no file (safetensors', torch.save's, onnx's and ONNX Runtime's writers give none)
    names the folder being filled (an output folder, a run's checkpoints), so that its one line says where the disk
    gave out. Without `os_errors`, an OSError is left as it is (around a training loop, one without a file name
    may be another's: a full disk under redirected stderr, a data worker's)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and os_errors:
            exc.filename = str(folder)
        raise
    except UserError:
        raise
    except Exception as exc:
        if (number := _rust_errno(exc)) is not None:
            raise OSError(number, os.strerror(number), str(folder)) from exc
        if _is_torch_write(exc):
            raise MachineError(f"{folder}: {_torch_write(exc)}") from exc
        raise
