"""Errors caused by what the user gave us (a file, a value); the CLI prints them without a traceback."""

from __future__ import annotations

import errno
import os

# What an OSError means to someone who just ran a command, by errno (others: the system's own words).
OS_ERROR_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EISDIR: "is a folder, not a file",
    errno.EEXIST: "already exists",
}


class UserError(Exception):
    """A problem with the user's input, with a message that names the offending file or value."""


def error_message(e: BaseException) -> str:
    """The message of `e`, unwrapped when a DataLoader worker re-raised it.

    torch re-raises an exception from a worker process as the same type with the text
    "Caught UserError in DataLoader worker process 0.\\nOriginal Traceback ...\\n<module>.UserError: <message>";
    the original message is the traceback's last line.
    """
    text = str(e)
    if text.startswith("Caught ") and "\nOriginal Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text.strip()


def os_error_message(e: OSError) -> str:
    """'<path>: <reason>' for a file-system fault; a full disk says so first."""
    reason = OS_ERROR_REASONS.get(e.errno, e.strerror or error_message(e))
    where = " -> ".join(os.fsdecode(p) for p in (e.filename, e.filename2) if p is not None)
    if e.errno == errno.EEXIST and os.path.isfile(where):  # mkdir where a file stands
        reason = "is a file, not a folder"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{reason}: could not write {where}" if where else reason
    return f"{where}: {reason}" if where else reason
