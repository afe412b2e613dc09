"""Exception types with messages a user can act on."""

from __future__ import annotations

from pathlib import Path


class MolW2SError(Exception):
    """Base class of every error molw2s raises on purpose (the CLI prints these cleanly)."""


class ConfigError(MolW2SError, ValueError):
    """A config file or option is invalid; the message names the key and the valid ones."""


class DataError(MolW2SError, ValueError):
    """Bad input data: the message names the file and, where known, the row and column."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.row = row
        self.column = column
        where = []
        if self.path is not None:
            where.append(f"file {self.path}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class DataNotFoundError(MolW2SError, FileNotFoundError):
    """A data file is neither in the data directory nor downloadable right now."""


class ChecksumError(DataError):
    """A downloaded or imported file does not match its published checksum."""


class TrainingError(MolW2SError):
    """Training diverged (a non-finite loss); the message names the step and what was kept."""
