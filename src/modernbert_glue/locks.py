"""One writer per output folder: the process writing a folder holds an exclusive `flock` on the folder itself until
it finishes it (outputs.OutputFolder), or until the library call that opened it raises (`releases_on_error`), or
until it exits. A second writer (a resume, an --overwrite, a sweep started twice) is refused in one line instead
of both writing the same checkpoints. The kernel drops a lock when its holder dies, so a killed run never leaves a
stale lock to clear by hand.

Readers and checks probe with a shared lock, so two probes never see each other as writers; a writer that meets a
probe retries for a moment. Where the file system has no flock (some NFS and Lustre mounts), folders go unlocked
and one warning says so.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import time
from pathlib import Path

from .errors import UserError

try:
    import fcntl
except ImportError:  # not POSIX: folders are not locked
    fcntl = None

log = logging.getLogger(__name__)

_HELD: dict[Path, int] = {}  # folders this process writes -> the open descriptor holding the folder's lock
_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
_RETRY_S = 1.0  # how long a writer waits out another process's probe
_warned: list[bool] = []
_BEFORE_RELEASE: list = []  # before_release's hooks


def _flock(folder: Path, exclusive: bool) -> int | bool:
    """An open descriptor holding `folder`'s lock; False when another process holds it; True when locking is
    impossible here (the folder cannot be opened, or its file system has no flock): go on unlocked."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return True  # the write that follows says why
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        return fd
    except OSError as exc:
        os.close(fd)
        if exc.errno in _BUSY:
            return False
        if not _warned:
            _warned.append(True)
            log.warning("%s: this file system has no flock (%s): output folders are not locked, so do not let two "
                        "processes write one folder", folder, exc.strerror)
        return True


def lock(folder: Path) -> bool:
    """Take `folder`'s lock for this process (kept until `release`); False when another process writes it."""
    key = folder.resolve()
    if fcntl is None or key in _HELD:
        return True
    deadline = time.monotonic() + _RETRY_S
    while (fd := _flock(key, exclusive=True)) is False and time.monotonic() < deadline:
        time.sleep(0.05)
    if isinstance(fd, bool):
        return fd
    _HELD[key] = fd
    return True


def release(folder: Path) -> None:
    """Let other processes write `folder` (a no-op when this process does not hold it)."""
    fd = _HELD.pop(Path(folder).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the lock


def in_use(folder: Path) -> bool:
    """Whether another process is writing `folder` now."""
    key = Path(folder).resolve()
    if fcntl is None or key in _HELD or not key.is_dir():
        return False
    fd = _flock(key, exclusive=False)
    if isinstance(fd, bool):
        return not fd
    os.close(fd)
    return False


def in_use_error(folder: Path) -> UserError:
    return UserError(f"{folder}: another modernbert-glue process is writing this folder now; wait for it to end, "
                     "or name another folder")


def before_release(hook) -> None:
    """Have `releases_on_error` call `hook(folder, error)` before it releases a folder (outputs records then what
    the folder holds)."""
    _BEFORE_RELEASE.append(hook)


def releases_on_error(fn):
    """For a library function that opens output folders: when it raises, the folders it locked are released, so
    that a caller that goes on (a notebook, a test, the CLI running in-process) does not keep them from others."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        before = set(_HELD)
        try:
            return fn(*args, **kwargs)
        except BaseException as error:
            for key in set(_HELD) - before:
                for hook in _BEFORE_RELEASE:
                    hook(key, error)
                release(key)
            raise

    return wrapped
