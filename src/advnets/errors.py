"""Errors a user can cause. The CLI prints them as one line and exits non-zero.

Programming errors are not wrapped: they stay tracebacks.
"""
from __future__ import annotations

import errno


class AdvnetsError(Exception):
    """A problem the user can fix: `message` says what is wrong, `hint` how to fix it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} -- {self.hint}" if self.hint else self.message


class ConfigError(AdvnetsError, ValueError):
    """An unknown key, a bad value or a bad override in a config or preset. Also a ValueError, as Python code
    calling the library expects of a bad argument."""


class DataError(AdvnetsError, ValueError):
    """A dataset that is missing, corrupt, truncated or fails its checksum, or training arrays of the wrong shape.
    Also a ValueError, as Python code calling the library expects of a bad argument."""


class CheckpointError(AdvnetsError):
    """A checkpoint that is missing, damaged or belongs to another model."""


class DivergedError(AdvnetsError):
    """Training produced a non-finite loss; the last finite checkpoint is kept."""


class RunError(AdvnetsError):
    """A run directory that does not exist, or that would be overwritten."""


class OutputError(AdvnetsError, OSError):
    """A file or directory that cannot be written: a full disk, a file-size limit, no permission, a read-only file
    system, or a path that is a file where a directory is needed (or the reverse). It is also an OSError, so code
    that handles OSError still does."""

    @classmethod
    def from_os_error(cls, exc: OSError, path=None, hint: str | None = None) -> "OutputError":
        """One line naming the file and the cause of `exc` (raised while writing `path`); `exc` itself when it is
        already one."""
        if isinstance(exc, cls):
            return exc
        where = path if path is not None else (exc.filename or "a file")
        causes = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file-size limit was reached",
                  errno.EDQUOT: "the disk quota is exhausted", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied", errno.EROFS: "the file system is read-only",
                  errno.EISDIR: "it is a directory", errno.ENOTDIR: "a part of the path is a file, not a directory",
                  errno.EEXIST: "a file of that name is in the way", errno.ENAMETOOLONG: "the name is too long"}
        cause = causes.get(exc.errno, exc.strerror or str(exc) or type(exc).__name__)
        fixes = {errno.ENOSPC: "free some disk space or write elsewhere",
                 errno.EDQUOT: "free some space or write elsewhere",
                 errno.EFBIG: "raise the limit (ulimit -f) or write elsewhere"}
        error = cls(f"cannot write {where}: {cause}",
                    hint or fixes.get(exc.errno, "choose a path you can write to"))
        error.errno = exc.errno
        return error
