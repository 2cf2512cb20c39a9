"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input, a missing file, a refused action: anything the user can correct."""

    exit_code = 2
