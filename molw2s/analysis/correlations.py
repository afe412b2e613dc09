"""Rank and linear correlations between predictors and measured W2S quantities,
with cluster-bootstrap confidence intervals over weak models (optionally also over seeds).

The point estimate correlates, across weak models, each model's mean over seeds (and
splits) of the predictor with its mean of the measured quantity. The bootstrap redraws
weak models with replacement (a cluster bootstrap: each drawn model brings all its
seeds), and with ``resample="models_and_seeds"`` also redraws the seeds inside each
drawn model, then recomputes the seed means and the correlation. The default is
``"models"``: redrawing only three or so seeds per model adds noise to every mean,
which attenuates the resampled correlations towards zero, so the two-stage percentile
interval is biased low and can even exclude the point estimate (docs/experiment.md).
Resamples in which either side is constant have no defined correlation; they are
skipped and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

METHODS = ("spearman", "kendall", "pearson")
RESAMPLING = ("models", "models_and_seeds")


@dataclass(frozen=True)
class Correlation:
    """One correlation with its bootstrap interval."""

    predictor: str
    measured: str
    method: str
    value: float
    ci_low: float
    ci_high: float
    n_models: int
    n_rows: int
    n_boot: int
    n_boot_degenerate: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON/CSV."""
        return asdict(self)


def correlation(x: np.ndarray, y: np.ndarray, method: str) -> float:
    """Spearman, Kendall (tau-b) or Pearson correlation; NaN when either side is constant.

    Computed in numpy (the same values as ``scipy.stats``' ``spearmanr``, ``kendalltau``
    and ``pearsonr``, tested), without scipy's per-call overhead: the bootstraps call this
    hundreds of thousands of times on a few dozen points. Kendall forms every pair, so it
    needs O(n^2) memory.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d of equal length, got {x.shape} and {y.shape}")
    if method not in METHODS:
        raise ValueError(f"unknown correlation method {method!r}; choose from {', '.join(METHODS)}")
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    if method == "spearman":
        return _pearson(average_ranks(x), average_ranks(y))
    if method == "kendall":
        return _kendall_tau_b(x, y)
    return _pearson(x, y)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, ties sharing their average rank (``scipy.stats.rankdata``)."""
    n = len(x)
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    starts_group = np.empty(n, dtype=bool)
    starts_group[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], n)
    ranks = np.empty(n)
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(starts_group) - 1]
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    r = float(xc @ yc) / float(np.sqrt((xc @ xc) * (yc @ yc)))
    return float(np.clip(r, -1.0, 1.0))


def _kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b: sum over pairs of sign(dx) sign(dy), over the square root of the
    numbers of pairs untied in x and untied in y."""
    i, j = np.triu_indices(len(x), 1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    return float(np.clip(float(sx @ sy) / float(np.sqrt((sx @ sx) * (sy @ sy))), -1.0, 1.0))


def bootstrap_correlations(
    table: pd.DataFrame,
    predictors: Sequence[str],
    measured: Sequence[str],
    *,
    model_col: str = "weak",
    methods: Sequence[str] = METHODS,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    resample: str = "models",
) -> list[Correlation]:
    """Correlate every predictor column with every measured column across weak models.

    ``table`` has one row per (weak model, seed/split) cell. Rows with a missing value in
    either column of a pair are left out of that pair only.
    """
    if resample not in RESAMPLING:
        raise ValueError(f"resample must be one of {RESAMPLING}, got {resample!r}")
    missing = [c for c in [model_col, *predictors, *measured] if c not in table.columns]
    if missing:
        raise KeyError(f"columns not in the results table: {missing}; have {list(table.columns)}")
    rng = np.random.default_rng(seed)
    out: list[Correlation] = []
    for p in predictors:
        for m in measured:
            sub = table[[model_col, p, m]].dropna()
            groups = [g[[p, m]].to_numpy(float) for _, g in sub.groupby(model_col, sort=True)]
            out.extend(
                _pair_correlations(groups, p, m, methods, n_boot, confidence, rng, resample == "models_and_seeds")
            )
    return out


def cluster_bootstrap(
    n_models: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Percentile cluster bootstrap over weak models: (point, low, high, n_degenerate).

    ``statistic(pick)`` maps an array of model indices (drawn with replacement) to a 1-D
    array of values; the point estimate uses every model once. A resample whose values
    are all undefined (NaN) is counted as degenerate and skipped. With fewer than 3
    models no interval is drawn (NaN bounds).
    """
    point = statistic(np.arange(n_models))
    draws: list[np.ndarray] = []
    degenerate = 0
    if n_models >= 3:
        for _ in range(n_boot):
            values = statistic(rng.integers(0, n_models, size=n_models))
            if not np.isfinite(values).any():
                degenerate += 1
                continue
            draws.append(values)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.full(len(point), np.nan), np.full(len(point), np.nan)
    for k in range(len(point)):
        column = np.asarray([d[k] for d in draws], dtype=float)
        column = column[np.isfinite(column)]
        if len(column):
            low[k], high[k] = np.quantile(column, [alpha, 1 - alpha])
    return point, low, high, degenerate


def _pair_correlations(
    groups: list[np.ndarray],
    predictor: str,
    measured: str,
    methods: Sequence[str],
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
    resample_seeds: bool,
) -> list[Correlation]:
    n_models = len(groups)
    n_rows = int(sum(len(g) for g in groups))
    means = np.array([g.mean(axis=0) for g in groups]) if groups else np.empty((0, 2))

    def statistic(pick: np.ndarray) -> np.ndarray:
        if len(pick) < 2:
            return np.full(len(methods), np.nan)
        full = len(pick) == n_models and np.array_equal(pick, np.arange(n_models))
        sample = (
            means[pick] if full or not resample_seeds else np.array([_resampled_mean(groups[i], rng) for i in pick])
        )
        return np.array([correlation(sample[:, 0], sample[:, 1], m) for m in methods])

    point, low, high, degenerate = cluster_bootstrap(n_models, statistic, n_boot=n_boot, confidence=confidence, rng=rng)
    return [
        Correlation(
            predictor,
            measured,
            m,
            float(point[k]),
            float(low[k]),
            float(high[k]),
            n_models,
            n_rows,
            n_boot if n_models >= 3 else 0,
            degenerate,
        )
        for k, m in enumerate(methods)
    ]


def _resampled_mean(group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mean: np.ndarray = group[rng.integers(0, len(group), size=len(group))].mean(axis=0)
    return mean


def correlations_frame(results: Sequence[Correlation]) -> pd.DataFrame:
    """The correlations as a DataFrame, one row per (predictor, measured, method)."""
    frame: pd.DataFrame = pd.DataFrame([r.to_dict() for r in results])
    return frame
