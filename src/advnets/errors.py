"""Errors a user can cause. The CLI prints them as one line and exits non-zero.

Programming errors are not wrapped: they stay tracebacks.
"""
from __future__ import annotations


class AdvnetsError(Exception):
    """A problem the user can fix: `message` says what is wrong, `hint` how to fix it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} -- {self.hint}" if self.hint else self.message


class ConfigError(AdvnetsError):
    """An unknown key, a bad value or a bad override in a config or preset."""


class DataError(AdvnetsError):
    """A dataset that is missing, corrupt, truncated or fails its checksum."""


class CheckpointError(AdvnetsError):
    """A checkpoint that is missing, damaged or belongs to another model."""


class DivergedError(AdvnetsError):
    """Training produced a non-finite loss; the last finite checkpoint is kept."""


class RunError(AdvnetsError):
    """A run directory that does not exist, or that would be overwritten."""
