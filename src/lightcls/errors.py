"""The one exception type for a user's mistake, and the one-line form of what the machine refuses."""

import errno

#: what the machine refuses (a full disk, a file or folder that may not be read or written): one line
MACHINE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS})


class LightclsError(Exception):
    """A mistake in the user's data, config or files: shown as one line, without a traceback."""


class Interrupted(Exception):
    """Training stopped by Ctrl-C or SIGTERM after saving a resumable checkpoint (exit code 130/143)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(message: str) -> str:
    """A message's lines joined into one (errors are shown as a single line)."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def machine_refusal(err: OSError) -> str | None:
    """`<file>: No space left on device` for an error in MACHINE_ERRORS; None for any other."""
    if err.errno not in MACHINE_ERRORS:
        return None
    return f"{err.filename or 'a file'}: {err.strerror}"
