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
    and ``pearsonr``, tested): one row of :func:`batched_correlations`.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d of equal length, got {x.shape} and {y.shape}")
    return float(batched_correlations(x[None], y[None], method)[0])


def batched_correlations(X: np.ndarray, Y: np.ndarray, method: str) -> np.ndarray:
    """The correlation of each row of ``X`` with the same row of ``Y`` (both (B, n)): a
    bootstrap's resamples in one call instead of B calls. NaN for a row where either side
    is constant or n < 2. Kendall forms every pair, so it needs O(B n^2) memory."""
    if method not in METHODS:
        raise ValueError(f"unknown correlation method {method!r}; choose from {', '.join(METHODS)}")
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    out = np.full(len(X), np.nan)
    if X.shape[1] < 2:
        return out
    ok = (np.ptp(X, axis=1) > 0) & (np.ptp(Y, axis=1) > 0)
    X, Y = X[ok], Y[ok]
    if method == "spearman":
        out[ok] = _pearson_rows(average_ranks_rows(X), average_ranks_rows(Y))
    elif method == "kendall":
        out[ok] = _kendall_tau_b_rows(X, Y)
    else:
        out[ok] = _pearson_rows(X, Y)
    return out


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, ties sharing their average rank (``scipy.stats.rankdata``)."""
    ranks: np.ndarray = average_ranks_rows(np.asarray(x, dtype=float)[None])[0]
    return ranks


def average_ranks_rows(X: np.ndarray) -> np.ndarray:
    """:func:`average_ranks` of each row of ``X`` (B, n): a tie group at sorted positions
    s..e-1 gets (s + e + 1) / 2."""
    n = X.shape[1]
    order = np.argsort(X, axis=1, kind="mergesort")
    ordered = np.take_along_axis(X, order, axis=1)
    starts = np.ones(X.shape, dtype=bool)
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=starts[:, 1:])
    ends = np.ones(X.shape, dtype=bool)  # the last of its group
    ends[:, :-1] = starts[:, 1:]
    position = np.arange(n)
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    after = np.minimum.accumulate(np.where(ends, position + 1, n)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty(X.shape)
    np.put_along_axis(ranks, order, (first + after + 1) / 2.0, axis=1)
    return ranks


def _pearson_rows(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    xc, yc = X - X.mean(axis=1, keepdims=True), Y - Y.mean(axis=1, keepdims=True)
    r = np.einsum("ij,ij->i", xc, yc) / np.sqrt(np.einsum("ij,ij->i", xc, xc) * np.einsum("ij,ij->i", yc, yc))
    clipped: np.ndarray = np.clip(r, -1.0, 1.0)
    return clipped


def _kendall_tau_b_rows(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b per row: sum over pairs of sign(dx) sign(dy), over the square root of
    the numbers of pairs untied in x and untied in y."""
    i, j = np.triu_indices(X.shape[1], 1)
    sx, sy = np.sign(X[:, i] - X[:, j]), np.sign(Y[:, i] - Y[:, j])
    tau = np.einsum("ij,ij->i", sx, sy) / np.sqrt(np.einsum("ij,ij->i", sx, sx) * np.einsum("ij,ij->i", sy, sy))
    clipped: np.ndarray = np.clip(tau, -1.0, 1.0)
    return clipped


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
    statistic_draws: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Percentile cluster bootstrap over weak models: (point, low, high, n_dropped).

    ``statistic(picks)`` maps a (B, n_models) array of model indices (each row drawn with
    replacement) to a (B, k) array of values; the point estimate uses every model once.
    The resamples are drawn one after another from ``rng`` and passed in one call, or, when
    the statistic draws from ``rng`` itself (``statistic_draws``), one per call right after
    each draw (so the stream of draws does not depend on the batching). A resample in which
    a statistic is undefined (NaN) is skipped for that statistic and counted in its entry of
    ``n_dropped`` (one count per statistic). With fewer than 3 models no interval is drawn
    (NaN bounds).
    """
    point = statistic(np.arange(n_models)[None])[0]
    k = len(point)
    if n_models < 3 or n_boot == 0:
        values = np.empty((0, k))
    elif statistic_draws:
        values = np.array([statistic(rng.integers(0, n_models, size=n_models)[None])[0] for _ in range(n_boot)])
    else:
        values = statistic(np.array([rng.integers(0, n_models, size=n_models) for _ in range(n_boot)]))
    dropped = (~np.isfinite(values)).sum(axis=0).astype(int)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.full(k, np.nan), np.full(k, np.nan)
    for j in range(k):
        column = values[:, j][np.isfinite(values[:, j])]
        if len(column):
            low[j], high[j] = np.quantile(column, [alpha, 1 - alpha])
    return point, low, high, dropped


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

    def statistic(picks: np.ndarray) -> np.ndarray:
        if picks.shape[1] < 2:
            return np.full((len(picks), len(methods)), np.nan)
        if resample_seeds and not np.array_equal(picks, np.arange(n_models)[None]):
            sample = np.array([[_resampled_mean(groups[i], rng) for i in pick] for pick in picks])
        else:
            sample = means[picks]  # (B, n_models, 2)
        return np.stack([batched_correlations(sample[..., 0], sample[..., 1], m) for m in methods], axis=1)

    point, low, high, dropped = cluster_bootstrap(
        n_models, statistic, n_boot=n_boot, confidence=confidence, rng=rng, statistic_draws=resample_seeds
    )
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
            int(dropped[k]),
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
