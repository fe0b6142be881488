"""Expected failures as one line for the person at the terminal: what went wrong, with which
path, and what to do. Programming errors keep their traceback."""

from __future__ import annotations

import errno
import getpass
import re


class PipelineError(ValueError):
    """An expected failure the user can act on (bad input, bad settings, a refused model): `churn`
    prints its message as one line and exits with 2. Every stage's own error derives from it, so
    the command line catches them all without importing any stage."""


class InputError(PipelineError):
    """An input of a command is missing, unreadable or not in the format the command reads."""


class SnapshotError(PipelineError):
    """A snapshot does not fit the model that reads it (a missing feature column, mixed horizons)."""


# what to do, by errno, for the failures a user can cause or fix: rights, paths, space
ADVICE = {
    errno.EACCES: "permission denied for user {user}: give this user access to it (chmod/chown), or "
    "run the stage on a copy the user owns",
    errno.EPERM: "operation not permitted for user {user}: give this user access to it (chmod/chown)",
    errno.ENOENT: "no such file or folder: check the path, or run the stage that writes it (dvc repro)",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "this is a folder where a file is expected: check the path",
    errno.ENOSPC: "no space left on the device: free space, or point TMPDIR and featurize.temp_directory "
    "at a larger disk",
    errno.EDQUOT: "disk quota exceeded: free space, or write to another disk",
    errno.EROFS: "the file system is read-only: write the outputs to a writable folder",
    errno.ENAMETOOLONG: "the path is too long: use a shorter one",
}

# DuckDB reports file-system failures as its own IOException, with the OS's words in the text
_DUCKDB_OS_WORDS = {
    "Permission denied": errno.EACCES,
    "No such file or directory": errno.ENOENT,
    "No files found that match the pattern": errno.ENOENT,
    "No space left on device": errno.ENOSPC,
    "Read-only file system": errno.EROFS,
}


def user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's arbitrary user)
        return "this user"


def _published(path: str) -> str:
    """The output a temporary sibling stands for (`io.atomic_path` writes `.name.tmp-<pid>`)."""
    folder, _, name = str(path).rpartition("/")
    match = re.fullmatch(r"\.(.+)\.tmp-\d+", name)
    if not match:
        return str(path)
    return f"{folder}/{match.group(1)} (written in {folder or '.'})"


def os_error_message(exc: BaseException) -> str | None:
    """The one-line message for an OS-level failure the user can fix, or None for anything else."""
    if isinstance(exc, OSError) and exc.errno in ADVICE:
        path = _published(exc.filename) if exc.filename is not None else "(path not reported)"
        second = f" -> {exc.filename2}" if exc.filename2 else ""
        return f"{path}{second}: {ADVICE[exc.errno].format(user=user_name())}"
    if type(exc).__name__ == "IOException" and "duckdb" in type(exc).__module__:
        text = str(exc)
        for words, code in _DUCKDB_OS_WORDS.items():
            if words in text:
                quoted = re.search(r'"([^"]+)"', text) or re.search(r"'([^']+)'", text)
                path = quoted.group(1) if quoted else "(path not reported)"
                return f"{path}: {ADVICE[code].format(user=user_name())}"
    return None
