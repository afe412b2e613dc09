"""The validation part a student trained on one set of labelled rows holds out for early
stopping (it is validated on the labels it trains on, never on gold labels it must not see)."""

from __future__ import annotations

import numpy as np


def validation_cut(rows: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` cut into (fitting rows, validation rows), sorted, at least one of each,
    drawn with ``seed``."""
    rows = np.asarray(rows)
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(rows))
    n_valid = min(max(1, round(fraction * len(rows))), len(rows) - 1)
    return np.sort(rows[order[n_valid:]]), np.sort(rows[order[:n_valid]])
