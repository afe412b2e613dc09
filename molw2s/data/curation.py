"""Pure checks on task data: parse labels, group duplicate molecules, apply a duplicate policy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from molw2s.chem.smiles import row_label
from molw2s.errors import DataError

DuplicatePolicy = Literal["keep", "first", "mean", "error"]
BadLabelPolicy = Literal["error", "drop"]


@dataclass(frozen=True)
class BadLabel:
    """A label that is not a finite number: its 0-based row, the text, what is wrong."""

    row: int
    value: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{row_label(self.row, self.line)}: {self.value!r}: {self.reason}"


def parse_labels(raw: Sequence[str]) -> tuple[np.ndarray, list[BadLabel]]:
    """Parse label strings to float64; bad ones (empty, non-numeric, NaN, inf) become NaN and
    are listed with their position in ``raw`` as the row."""
    y = np.full(len(raw), np.nan)
    bad: list[BadLabel] = []
    for row, text in enumerate(raw):
        stripped = text.strip()
        try:
            value = float(stripped)
        except ValueError:
            bad.append(BadLabel(row, text, "empty" if not stripped else "not a number"))
            continue
        if not math.isfinite(value):
            bad.append(BadLabel(row, text, "not a finite number"))
            continue
        y[row] = value
    return y, bad


def duplicate_groups(keys: Sequence[str]) -> list[np.ndarray]:
    """Positions of entries sharing a key, one array per key seen at least twice (by first occurrence)."""
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return [np.asarray(g, dtype=np.int64) for g in groups.values() if len(g) > 1]


def apply_duplicate_policy(
    y: np.ndarray, groups: Sequence[np.ndarray], policy: DuplicatePolicy, *, describe: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve duplicate groups; return (positions to keep, their labels).

    ``keep``: everything stays; ``first``: each group keeps its first entry; ``mean``:
    the first entry stays with the group's mean label; ``error``: raise DataError
    (``describe`` gives one line per group for the message).
    """
    y = np.asarray(y, dtype=np.float64)
    keep = np.ones(len(y), dtype=bool)
    y_out = y.copy()
    if not groups or policy == "keep":
        return np.flatnonzero(keep), y_out
    if policy == "error":
        shown = "\n".join(f"  {line}" for line in list(describe)[:5])
        raise DataError(f"{len(groups)} duplicated molecule(s) (duplicates='error'):\n{shown}")
    if policy not in ("first", "mean"):
        raise ValueError(f"unknown duplicate policy {policy!r}; valid: keep, first, mean, error")
    for group in groups:
        keep[group[1:]] = False
        if policy == "mean":
            y_out[group[0]] = y[group].mean()
    positions = np.flatnonzero(keep)
    return positions, y_out[positions]
