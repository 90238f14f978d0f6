"""One exception tree for everything costlens reports to a user.

Drawn here, at the top, so the CLI can map each branch to a documented exit
code (see README "Exit codes") and never show a traceback for a user error:

    CostlensError                 exit 2 unless stated
    ├── ConfigError               bad option / environment value
    ├── InputError                a file we read is unusable (names file, line, column)
    │   └── PricingError          the price table or alias table is malformed
    ├── StoreError                the DuckDB file cannot be used
    │   └── StoreLockedError      another process holds the DuckDB file
    ├── LakeError                 the lake cannot be reached, read or written
    └── AlreadyReplayedError      same file (sha256) already replayed into this DB

Third-party errors are wrapped with ``raise ... from e`` so the cause stays
available to ``--debug`` without leaking into normal output.
"""

from __future__ import annotations

__all__ = [
    "AlreadyReplayedError",
    "ConfigError",
    "CostlensError",
    "InputError",
    "LakeError",
    "PricingError",
    "StoreError",
    "StoreLockedError",
]


class CostlensError(Exception):
    """Base of every error costlens reports to the user."""

    exit_code: int = 2


class ConfigError(CostlensError):
    """An option, environment variable or argument is invalid."""


class InputError(CostlensError):
    """An input file is unusable; carries where, so the message can name it."""

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        self.column = column
        super().__init__(self.location_prefix() + reason)

    def location_prefix(self) -> str:
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts) + ": " if parts else ""


class PricingError(InputError):
    """The price table (or alias table) is malformed."""


class StoreError(CostlensError):
    """The DuckDB store cannot be opened or written."""


class StoreLockedError(StoreError):
    """Another process has the DuckDB file open for writing."""


class LakeError(CostlensError):
    """A lake (directory or S3 bucket) cannot be reached, read or written, or holds something unreadable."""


class AlreadyReplayedError(CostlensError):
    """The same source file (by sha256) was already replayed into this DB."""
