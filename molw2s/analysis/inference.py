"""Calibrated inference for one correlation across n independent sources.

The question is whether a label-free predictor M ranks the weak models' measured W2S
error. With one point per independent source (the caller collapses dependent models,
e.g. seeds of one weak model, into one point first) and n of 8 to 30 points, the
percentile bootstrap of :mod:`molw2s.analysis.correlations` is wide and disagrees with
the exact test (docs/experiment.md, "Calibrated statistics"). This module gives:

- :func:`permutation_pvalue`: the permutation test of no association, exact (every one of
  the n! orderings) up to ``exact_max_n`` points, Monte Carlo beyond;
- :func:`min_detectable_rho`: the smallest |rho| that test can call significant at n;
- :func:`leave_one_out`: the range of the correlation with each point left out;
- :func:`rho_interval`: a Fisher-z interval with the Bonett-Wright variance for Spearman
  (its coverage checked by simulation in ``benchmarks/interval_coverage.py``);
- :func:`power_min_sources`: the smallest n at which the exact test detects a given true
  Spearman rho with a given power (bivariate normal data);
- :func:`verdict_words`: the numbers turned into one of four verdicts.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from molw2s.analysis.correlations import METHODS, average_ranks_rows, batched_correlations, correlation

ALTERNATIVES = ("two-sided", "greater", "less")
_CHUNK_ELEMENTS = 4_000_000  # per batched call: bounds memory (Kendall forms n^2/2 pairs per row)
_TOL = 1e-12  # two statistics this close are equal (the same ranking computed twice)
_FISHER_NAMES = {
    "spearman": "fisher-z (Bonett-Wright)",
    "kendall": "fisher-z (Fieller)",
    "pearson": "fisher-z",
}


@dataclass(frozen=True)
class PermutationTest:
    """A permutation test of no association: the observed statistic, its p-value, whether
    every permutation was enumerated, and how many permutations were used."""

    statistic: float
    p_value: float
    exact: bool
    n_perm: int


@dataclass(frozen=True)
class Interval:
    """A confidence interval for a correlation. ``n_resamples`` and ``n_degenerate`` count
    the resamples drawn and those dropped as degenerate (both 0 for an analytic interval)."""

    low: float
    high: float
    method: str
    confidence: float
    n_resamples: int = 0
    n_degenerate: int = 0


def _check(method: str, alternative: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown correlation method {method!r}; choose from {', '.join(METHODS)}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


@lru_cache(maxsize=4)
def _all_permutations(n: int) -> np.ndarray:
    """Every permutation of range(n), one per row (n! rows), identity first."""
    flat = np.fromiter(itertools.chain.from_iterable(itertools.permutations(range(n))), dtype=np.int16)
    perms: np.ndarray = flat.reshape(-1, n)
    perms.flags.writeable = False
    return perms


def _prepared(x: np.ndarray, y: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, str]:
    """The vectors and method the permuted statistics use: Spearman is Pearson on average
    ranks, and permuting y permutes its ranks, so the ranks are computed once."""
    if method == "spearman":
        return average_ranks_rows(x[None])[0], average_ranks_rows(y[None])[0], "pearson"
    return x, y, method


def _permuted_statistics(x: np.ndarray, y: np.ndarray, method: str, perms: np.ndarray) -> np.ndarray:
    """The correlation of x with y[perm] for every row of ``perms``, in memory-bounded chunks."""
    n = len(x)
    chunk = max(1, _CHUNK_ELEMENTS // (n * n if method == "kendall" else n))
    out = np.empty(len(perms))
    for start in range(0, len(perms), chunk):
        p = perms[start : start + chunk]
        out[start : start + len(p)] = batched_correlations(np.broadcast_to(x, p.shape), y[p], method)
    return out


def _random_permutations(n: int, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    perms: np.ndarray = rng.permuted(np.tile(np.arange(n, dtype=np.int16), (n_perm, 1)), axis=1)
    return perms


def _null_distribution(
    x: np.ndarray, y: np.ndarray, method: str, exact_max_n: int, n_perm: int, seed: int
) -> tuple[np.ndarray, bool]:
    """The permutation null of the statistic: all n! values (exact) or ``n_perm`` random ones."""
    n = len(x)
    xs, ys, inner = _prepared(x, y, method)
    if n <= exact_max_n:
        return _permuted_statistics(xs, ys, inner, _all_permutations(n)), True
    perms = _random_permutations(n, n_perm, np.random.default_rng(seed))
    return _permuted_statistics(xs, ys, inner, perms), False


def _tail_counts(null: np.ndarray, values: np.ndarray, alternative: str) -> np.ndarray:
    """How many null statistics are at least as extreme as each of ``values``."""
    if alternative == "two-sided":
        null, values = np.abs(null), np.abs(values)
    elif alternative == "less":
        null, values = -null, -values
    ordered = np.sort(null)
    counts: np.ndarray = len(ordered) - np.searchsorted(ordered, values - _TOL * np.maximum(1.0, values), "left")
    return counts


def _p_values(null: np.ndarray, values: np.ndarray, alternative: str, exact: bool) -> np.ndarray:
    """Exact: the fraction of the n! statistics as extreme (the identity is among them).
    Monte Carlo: (b + 1) / (m + 1), which counts the observed ordering as one draw and so
    never gives p = 0 (a valid p-value for any m)."""
    counts = _tail_counts(null, values, alternative)
    if exact:
        exact_p: np.ndarray = counts / len(null)
        return exact_p
    mc_p: np.ndarray = (counts + 1.0) / (len(null) + 1.0)
    return mc_p


def permutation_pvalue(
    x: np.ndarray,
    y: np.ndarray,
    method: str = "spearman",
    *,
    alternative: str = "two-sided",
    exact_max_n: int = 9,
    n_perm: int = 20000,
    seed: int = 0,
) -> PermutationTest:
    """Permutation test of no association between ``x`` and ``y`` (one point per source).

    Up to ``exact_max_n`` points every ordering of ``y`` is enumerated (9! = 362880 takes
    about 0.3 s for Spearman and 0.7 s for Kendall on one core; 10! takes 3 s), beyond it
    ``n_perm`` random orderings (seeded) give the (b + 1) / (m + 1) estimate. Ties are
    handled by the method's own tie correction (average ranks for Spearman, tau-b for
    Kendall), recomputed for every ordering. ``"two-sided"`` counts |statistic| >= |observed|
    (for a symmetric null, as Spearman's and Kendall's without ties, this is twice the
    one-sided p); ``"greater"``/``"less"`` count one tail. NaN when either side is constant.
    """
    _check(method, alternative)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d of equal length, got {x.shape} and {y.shape}")
    observed = float(batched_correlations(x[None], y[None], method)[0])
    if not math.isfinite(observed):
        exact = len(x) <= exact_max_n
        return PermutationTest(observed, math.nan, exact, math.factorial(len(x)) if exact else 0)
    null, exact = _null_distribution(x, y, method, exact_max_n, n_perm, seed)
    p = float(_p_values(null, np.array([observed]), alternative, exact)[0])
    return PermutationTest(observed, p, exact, len(null))


@lru_cache(maxsize=8)
def _untied_null(n: int, method: str, exact_max_n: int, n_perm: int, seed: int) -> tuple[np.ndarray, bool]:
    """The permutation null at n untied points (it depends only on n), shared by the
    alternatives and levels of :func:`min_detectable_rho`."""
    ranks = np.arange(n, dtype=float)
    null, exact = _null_distribution(ranks, ranks, method, exact_max_n, n_perm, seed)
    null.flags.writeable = False  # cached: shared by every caller
    return null, exact


@lru_cache(maxsize=256)
def min_detectable_rho(
    n: int,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    method: str = "spearman",
    exact_max_n: int = 9,
    n_perm: int = 200_000,
    seed: int = 0,
) -> float:
    """The smallest |rho| whose permutation p-value is <= ``alpha`` at n untied points.

    Without ties Spearman's and Kendall's null distributions depend only on n, so this is
    the critical value of the test (exact up to ``exact_max_n``, Monte Carlo with
    ``n_perm`` orderings beyond). NaN when no attainable value reaches ``alpha`` (e.g.
    n = 4 two-sided). Pearson's permutation null depends on the data: refused.
    """
    _check(method, alternative)
    if method == "pearson":
        raise ValueError("Pearson's permutation null depends on the data; use spearman or kendall")
    if n < 3:
        return math.nan
    null, exact = _untied_null(n, method, exact_max_n, n_perm, seed)
    side = null if alternative == "greater" else (-null if alternative == "less" else np.abs(null))
    candidates = np.unique(np.round(side[side > 0], 12))
    significant = candidates[_p_values(side, candidates, "greater", exact) <= alpha]
    return float(significant.min()) if len(significant) else math.nan


def leave_one_out(x: np.ndarray, y: np.ndarray, method: str = "spearman") -> tuple[float, float]:
    """The smallest and largest correlation over the n fits that each leave one point out
    (NaN-aware: a fit whose remaining points are constant on one side is skipped)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if x.shape != y.shape or x.ndim != 1 or n < 3:
        raise ValueError(f"need two 1-d arrays of equal length >= 3, got {x.shape} and {y.shape}")
    keep = ~np.eye(n, dtype=bool)
    values = batched_correlations(
        np.broadcast_to(x, (n, n))[keep].reshape(n, n - 1), y[np.nonzero(keep)[1]].reshape(n, n - 1), method
    )
    if not np.isfinite(values).any():
        return math.nan, math.nan
    return float(np.nanmin(values)), float(np.nanmax(values))


def fisher_z_variance(r: np.ndarray, n: int, method: str) -> np.ndarray:
    """Variance of atanh(r) at n points: Bonett & Wright (2000) (1 + r^2/2) / (n - 3) for
    Spearman, Fieller et al. (1957) 0.437 / (n - 4) for Kendall, 1 / (n - 3) for Pearson."""
    r = np.asarray(r, dtype=float)
    if method == "spearman":
        variance: np.ndarray = (1.0 + r**2 / 2.0) / (n - 3)
    elif method == "kendall":
        variance = np.full(r.shape, 0.437 / (n - 4))
    elif method == "pearson":
        variance = np.full(r.shape, 1.0 / (n - 3))
    else:
        raise ValueError(f"unknown correlation method {method!r}; choose from {', '.join(METHODS)}")
    return variance


def fisher_z_bounds(
    r: np.ndarray, n: int, *, confidence: float = 0.95, method: str = "spearman"
) -> tuple[np.ndarray, np.ndarray]:
    """Fisher-z interval bounds tanh(atanh(r) -/+ z sqrt(var)) for each r (any shape).

    At |r| = 1 the interval collapses to the point (atanh is infinite there)."""
    r = np.asarray(r, dtype=float)
    half = stats.norm.ppf(0.5 + confidence / 2.0) * np.sqrt(fisher_z_variance(r, n, method))
    with np.errstate(divide="ignore"):
        z = np.arctanh(r)
    return np.tanh(z - half), np.tanh(z + half)


def rho_interval(x: np.ndarray, y: np.ndarray, *, confidence: float = 0.95, method: str = "spearman") -> Interval:
    """Confidence interval for the correlation of ``x`` and ``y`` (one point per source):
    the Fisher-z interval of :func:`fisher_z_bounds`, whose coverage was checked by
    simulation for Spearman at n = 8..32 (docs/experiment.md, "Calibrated statistics").
    NaN bounds when a side is constant or n is too small for the variance (n <= 3; n <= 4
    for Kendall)."""
    r = correlation(x, y, method)
    n = len(x)
    if not math.isfinite(r) or n <= (4 if method == "kendall" else 3):
        return Interval(math.nan, math.nan, _FISHER_NAMES[method], confidence)
    low, high = fisher_z_bounds(np.array(r), n, confidence=confidence, method=method)
    return Interval(float(low), float(high), _FISHER_NAMES[method], confidence)


def spearman_normal_samples(
    rho_s: float, n: int, n_sets: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n_sets`` data sets of n bivariate normal points whose population Spearman rho is
    ``rho_s`` (Pearson r = 2 sin(pi rho_s / 6), the inverse of rho_s = (6/pi) asin(r/2)):
    two (n_sets, n) arrays."""
    r = 2.0 * math.sin(math.pi * rho_s / 6.0)
    x = rng.standard_normal((n_sets, n))
    y = r * x + math.sqrt(1.0 - r * r) * rng.standard_normal((n_sets, n))
    return x, y


def exact_test_power(n: int, rho_s: float, *, alpha: float = 0.05, n_sim: int = 4000, seed: int = 0) -> float:
    """The fraction of ``n_sim`` simulated bivariate normal data sets (population Spearman
    ``rho_s``, n points) in which the two-sided Spearman permutation test rejects at
    ``alpha``, i.e. |rho| reaches :func:`min_detectable_rho`."""
    critical = min_detectable_rho(n, alpha=alpha)
    if not math.isfinite(critical):
        return 0.0
    x, y = spearman_normal_samples(rho_s, n, n_sim, np.random.default_rng(seed))
    rho = batched_correlations(x, y, "spearman")
    return float(np.mean(np.abs(rho) >= critical - _TOL))


def power_min_sources(
    rho: float = 0.8, *, alpha: float = 0.05, power: float = 0.8, n_sim: int = 4000, n_max: int = 64, seed: int = 0
) -> int:
    """The smallest number of independent sources n (4..``n_max``) at which the two-sided
    Spearman permutation test detects a true Spearman ``rho`` with at least ``power``
    (:func:`exact_test_power`, seeded). Raises if even ``n_max`` is not enough."""
    for n in range(4, n_max + 1):
        if exact_test_power(n, rho, alpha=alpha, n_sim=n_sim, seed=seed) >= power:
            return n
    raise ValueError(f"power {power} for rho {rho} not reached with up to {n_max} sources")


def verdict_words(
    rho: float,
    low: float,
    high: float,
    p_value: float,
    expected_sign: int,
    n: int,
    min_n: int,
    *,
    alpha: float = 0.05,
) -> str:
    """One verdict for "does the predictor rank the measured quantity with the expected sign".

    - ``n < min_n``: "no verdict" (too few independent sources for the test to have power);
    - interval excludes 0 on the expected side and ``p_value <= alpha``: "supports";
    - interval excludes 0 on the other side and ``p_value <= alpha``: "contradicts";
    - otherwise "inconclusive" (including when the interval and the test disagree).

    A contradiction claims as much as a support, so it needs the same evidence. The
    interval should be the 1 - ``alpha`` interval of ``rho`` (from :func:`rho_interval`) and
    must contain ``rho``; ``expected_sign`` is +1 or -1 (+1 for M against Err_w2s).
    """
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be +1 or -1, got {expected_sign}")
    sign = "+" if expected_sign > 0 else "-"
    numbers = f"rho = {rho:.2f}, interval [{low:.2f}, {high:.2f}], p = {p_value:.3g}, n = {n}"
    if n < min_n:
        return f"no verdict (n = {n} < {min_n} independent sources; {numbers})"
    if not all(math.isfinite(v) for v in (rho, low, high, p_value)):
        return f"inconclusive (undefined statistic; {numbers})"
    if not low <= rho <= high:
        raise ValueError(f"the interval [{low}, {high}] does not contain rho = {rho}")
    expected_low, expected_high = sorted((expected_sign * low, expected_sign * high))
    significant = p_value <= alpha
    if expected_low > 0 and significant:
        return f"supports (expected sign {sign}; {numbers})"
    if expected_high < 0 and significant:
        return f"contradicts (expected sign {sign}, found the opposite; {numbers})"
    return f"inconclusive (expected sign {sign}; {numbers})"


#: no verdict below this many independent sources: the smallest n at which the two-sided 5%
#: Spearman permutation test detects a true rho of 0.8 (the size of the paper's reported
#: correlations) with 80% power, ``power_min_sources(0.8)`` (tested). With fewer sources a
#: correlation as strong as the paper's is missed more than one time in five, so
#: "inconclusive" would say more about the sample size than about the predictor.
MIN_SOURCES_FOR_VERDICT = 11
