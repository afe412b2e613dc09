"""Batched correlation kernels and the cluster bootstrap of
:mod:`molw2s.analysis.paired`.

:func:`batched_correlations` computes Spearman, Kendall (tau-b) or Pearson correlations of
many rows at once in numpy (the values of ``scipy.stats``, tested), so that a bootstrap's
or a permutation test's resamples cost one call. :func:`cluster_bootstrap` is a percentile
bootstrap over weak models: each resample redraws the models with replacement (a drawn
model brings all its seeds) and evaluates a vectorised statistic on every resample in one
call; resamples in which a statistic is undefined are skipped and counted per statistic.
The run's correlations themselves (one point per independent source, permutation p-values,
Fisher-z intervals) are computed by :mod:`molw2s.experiment.evidence` with
:mod:`molw2s.analysis.inference`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

METHODS = ("spearman", "kendall", "pearson")


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


def cluster_bootstrap(
    n_models: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Percentile cluster bootstrap over weak models: (point, low, high, n_dropped).

    ``statistic(picks)`` maps a (B, n_models) array of model indices (each row drawn with
    replacement) to a (B, k) array of values; the point estimate uses every model once.
    The resamples are drawn one after another from ``rng`` (the draws of a plain loop) and
    passed in one call. A resample in which a statistic is undefined (NaN) is skipped for
    that statistic and counted in its entry of ``n_dropped`` (an int array, one count per
    statistic). With fewer than 3 models no interval is drawn (NaN bounds, no drops).
    """
    point = statistic(np.arange(n_models)[None])[0]
    k = len(point)
    if n_models < 3 or n_boot == 0:
        values = np.empty((0, k))
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
