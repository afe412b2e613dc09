"""Means and intervals across split seeds of per-seed differences.

Each reported difference (joint - single, method - random, two-stage - one-stage) is
computed within a seed (the same split, test set and weak labels) and summarised over
seeds by its mean and a Student-t interval: with the few seeds these experiments run (3
to 5) a percentile bootstrap over seeds has too few distinct resamples to give an
interval, while the t-interval is exact for normal per-seed differences. One seed gives
no interval (NaN bounds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats


def seed_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of per-seed ``values`` with a t-interval at ``confidence``."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


def summarise(frame: pd.DataFrame, by: list[str], value: str, confidence: float = 0.95) -> pd.DataFrame:
    """Per group of ``by``: ``n_seeds``, ``mean``, ``ci_low``, ``ci_high`` of column ``value``
    (one row per seed expected in each group; group order kept)."""
    rows = []
    for key, group in frame.groupby(by, sort=False):
        mean, low, high = seed_interval(group[value].to_numpy(), confidence)
        keys = key if isinstance(key, tuple) else (key,)
        rows.append(
            {**dict(zip(by, keys, strict=True)), "n_seeds": len(group), "mean": mean, "ci_low": low, "ci_high": high}
        )
    out: pd.DataFrame = pd.DataFrame(rows, columns=[*by, "n_seeds", "mean", "ci_low", "ci_high"])
    return out
