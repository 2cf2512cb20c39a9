"""Errors a user can fix. The CLI prints them as one line: exit code 2 for the input or the options, 1 for what
the machine refused (a full disk, a read-only or failing one)."""

from __future__ import annotations

import errno


class UserError(Exception):
    """Bad input, a missing file, a refused action: anything the user can correct."""

    exit_code = 2


class MachineError(UserError):
    """The machine refused a write or read: no bug to trace back, and nothing the input did."""

    exit_code = 1


# A full disk or quota, a read-only file system, a failing device: raised from deep inside torch, transformers or
# our own writers, wherever the disk happens to give out.
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}


def as_user_error(exc: Exception) -> UserError:
    """The one line the CLI prints for `exc`: a UserError as it is, an OSError of MACHINE_ERRNOS as what it hit and
    where; anything else is raised again, with its traceback, as the bug it is."""
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, OSError) and exc.errno in MACHINE_ERRNOS:
        where = f"{exc.filename}: " if exc.filename else ""
        return MachineError(f"{where}{exc.strerror or exc}; what was being written is not kept, and an unfinished "
                            "folder is refused by readers: make room and run the command again (`train --resume` "
                            "continues a run)")
    raise exc
