"""Calibrated inference for one correlation: permutation test, critical values, interval
coverage, leave-one-out, power and verdict words."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from molw2s.analysis.correlations import batched_correlations
from molw2s.analysis.inference import (
    exact_test_power,
    fisher_z_bounds,
    leave_one_out,
    min_detectable_rho,
    permutation_pvalue,
    power_min_sources,
    rho_interval,
    spearman_normal_samples,
    verdict_words,
)

SCIPY_STATISTIC = {
    "spearman": lambda x, y: stats.spearmanr(x, y).statistic,
    "kendall": lambda x, y: stats.kendalltau(x, y).statistic,
    "pearson": lambda x, y: stats.pearsonr(x, y).statistic,
}


def _scipy_p(x: np.ndarray, y: np.ndarray, method: str, alternative: str) -> float:
    result = stats.permutation_test(
        (y,),
        lambda b: SCIPY_STATISTIC[method](x, b),
        permutation_type="pairings",
        n_resamples=np.inf,
        alternative=alternative,
    )
    return float(result.pvalue)


@pytest.mark.parametrize("method", ["spearman", "kendall", "pearson"])
@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_exact_p_matches_scipy_one_sided_with_ties(method: str, alternative: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=6)
    y = np.round(x + rng.normal(size=6))  # a few ties in y
    ours = permutation_pvalue(x, y, method, alternative=alternative)
    assert ours.exact and ours.n_perm == math.factorial(6)
    assert len(np.unique(y)) < 6
    assert ours.p_value == pytest.approx(_scipy_p(x, y, method, alternative), abs=1e-12)


@pytest.mark.parametrize("method", ["spearman", "kendall"])
def test_exact_p_matches_scipy_two_sided_untied(method: str) -> None:
    # Without ties the null is symmetric, so |stat| >= |obs| equals scipy's doubled tail.
    rng = np.random.default_rng(5)
    for _ in range(3):
        x, y = rng.normal(size=6), rng.normal(size=6)
        ours = permutation_pvalue(x, y, method)
        assert ours.p_value == pytest.approx(_scipy_p(x, y, method, "two-sided"), abs=1e-12)


def test_known_spearman_critical_values() -> None:
    # Published exact two-sided 5% critical values (e.g. Zar 1972): n = 6, 8, 9, 10.
    assert min_detectable_rho(6) == pytest.approx(0.886, abs=1e-3)
    assert min_detectable_rho(8) == pytest.approx(0.738, abs=1e-3)
    assert min_detectable_rho(9) == pytest.approx(0.700, abs=1e-3)
    assert min_detectable_rho(10) == pytest.approx(0.648, abs=1e-3)  # Monte Carlo beyond 9
    assert min_detectable_rho(8, alternative="greater") == pytest.approx(0.643, abs=1e-3)
    assert math.isnan(min_detectable_rho(4))  # even rho = 1 has p = 2/24 > 0.05
    with pytest.raises(ValueError, match="Pearson"):
        min_detectable_rho(8, method="pearson")


def test_critical_value_is_the_boundary_of_the_test() -> None:
    critical = min_detectable_rho(8)
    x = np.arange(8.0)
    values = []
    for _ in range(40):
        y = np.random.default_rng(len(values)).permutation(8).astype(float)
        test = permutation_pvalue(x, y)
        values.append((abs(test.statistic), test.p_value))
    for rho, p in values:
        assert (p <= 0.05) == (rho >= critical - 1e-9)


def test_p_value_is_monotone_in_the_statistic() -> None:
    rng = np.random.default_rng(0)
    x = np.arange(8.0)
    tests = [permutation_pvalue(x, rng.permutation(8).astype(float)) for _ in range(60)]
    tests.sort(key=lambda t: abs(t.statistic))
    p = np.array([t.p_value for t in tests])
    assert np.all(np.diff(p) <= 1e-12)
    assert p[0] > 0.5 and p[-1] < 0.05


def test_monte_carlo_p_close_to_exact() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=8)
    y = 0.6 * x + rng.normal(size=8)
    exact = permutation_pvalue(x, y)
    mc = permutation_pvalue(x, y, exact_max_n=7, n_perm=20000, seed=1)
    assert exact.exact and not mc.exact and mc.n_perm == 20000
    se = math.sqrt(exact.p_value * (1 - exact.p_value) / mc.n_perm)
    assert abs(mc.p_value - exact.p_value) < 4 * se + 1 / mc.n_perm
    assert mc.statistic == exact.statistic


def test_constant_side_gives_nan() -> None:
    test = permutation_pvalue(np.arange(5.0), np.ones(5))
    assert math.isnan(test.statistic) and math.isnan(test.p_value)
    assert math.isnan(rho_interval(np.arange(5.0), np.ones(5)).low)


def test_leave_one_out_hand_example() -> None:
    x = np.array([1.0, 2, 3, 4, 5])
    y = np.array([1.0, 2, 3, 5, 4])  # rho = 0.9; without point 4 or 5: 1; without point 1: 0.8
    assert leave_one_out(x, y) == pytest.approx((0.8, 1.0))
    with pytest.raises(ValueError):
        leave_one_out(x[:2], y[:2])


def test_rho_interval_formula_and_point_inside() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=10), rng.normal(size=10)
    r = stats.spearmanr(x, y).statistic
    interval = rho_interval(x, y)
    half = 1.959963985 * math.sqrt((1 + r * r / 2) / 7)
    assert interval.low == pytest.approx(math.tanh(math.atanh(r) - half))
    assert interval.high == pytest.approx(math.tanh(math.atanh(r) + half))
    assert interval.low < r < interval.high
    assert interval.method == "fisher-z (Bonett-Wright)" and interval.n_resamples == 0


def _coverage(n: int, rho_s: float, confidence: float, n_sets: int = 2000) -> float:
    x, y = spearman_normal_samples(rho_s, n, n_sets, np.random.default_rng(1000 * n + int(10 * rho_s)))
    low, high = fisher_z_bounds(batched_correlations(x, y, "spearman"), n, confidence=confidence)
    return float(np.mean((low <= rho_s) & (rho_s <= high)))


@pytest.mark.parametrize("n", [8, 12, 16, 24, 32])
@pytest.mark.parametrize("rho_s", [0.0, 0.5, 0.8])
def test_interval_coverage(n: int, rho_s: float) -> None:
    # 2000 data sets: the binomial standard error at 0.95 is 0.005, so 0.93 is 4 sigma
    # below. Bonett-Wright is conservative at small n (exactly 0.963 at n = 8, rho = 0: see
    # the next test), so the upper end allows 0.98 (3.5 sigma above 0.963).
    assert 0.93 <= _coverage(n, rho_s, 0.95) <= 0.98


def test_exact_null_coverage_at_n8() -> None:
    # Under independence every ordering is equally likely: enumerate all 8! of them.
    orderings = np.array(list(itertools.permutations(range(8))), dtype=float)
    rho = batched_correlations(np.broadcast_to(np.arange(8.0), orderings.shape), orderings, "spearman")
    low, high = fisher_z_bounds(rho, 8)
    assert np.mean((low <= 0) & (high >= 0)) == pytest.approx(0.9632, abs=1e-4)


def test_coverage_tracks_the_confidence_level() -> None:
    assert 0.87 <= _coverage(16, 0.5, 0.90) <= 0.925


def test_spearman_normal_samples_have_the_population_rho() -> None:
    x, y = spearman_normal_samples(0.5, 4000, 1, np.random.default_rng(0))
    assert stats.spearmanr(x[0], y[0]).statistic == pytest.approx(0.5, abs=0.03)


def test_power_and_minimum_sources() -> None:
    assert exact_test_power(12, 0.0, n_sim=4000) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 4000)
    assert exact_test_power(4, 0.8) == 0.0  # no attainable rho is significant at n = 4
    n = power_min_sources(0.8)
    assert exact_test_power(n, 0.8) >= 0.8 > exact_test_power(n - 1, 0.8)
    assert power_min_sources(0.8, power=0.5) < n


def test_verdict_boundaries() -> None:
    words = verdict_words(0.8, 0.3, 0.95, 0.01, +1, 12, 12)
    assert words.startswith("supports")
    assert verdict_words(0.8, 0.3, 0.95, 0.01, +1, 11, 12).startswith("no verdict (n = 11 < 12")
    assert verdict_words(0.8, 0.3, 0.95, 0.05, +1, 12, 12).startswith("supports")  # p = alpha
    assert verdict_words(0.8, 0.3, 0.95, 0.0501, +1, 12, 12).startswith("inconclusive")
    assert verdict_words(0.6, 0.0, 0.9, 0.01, +1, 12, 12).startswith("inconclusive")  # low = 0
    assert verdict_words(-0.8, -0.95, -0.3, 0.01, +1, 12, 12).startswith("contradicts")
    assert verdict_words(-0.8, -0.95, -0.3, 0.01, -1, 12, 12).startswith("supports (expected sign -")
    assert verdict_words(0.8, 0.3, 0.95, 0.01, -1, 12, 12).startswith("contradicts")
    assert verdict_words(-0.8, -0.95, -0.3, 0.2, +1, 12, 12).startswith("inconclusive")
    assert verdict_words(math.nan, math.nan, math.nan, math.nan, +1, 12, 12).startswith("inconclusive")
    with pytest.raises(ValueError, match="contain"):
        verdict_words(0.8, -0.1, 0.7, 0.01, +1, 12, 12)
    with pytest.raises(ValueError, match="expected_sign"):
        verdict_words(0.8, 0.3, 0.95, 0.01, 0, 12, 12)


def test_the_verdict_minimum_is_the_power_based_number_of_sources():
    from molw2s.analysis.inference import MIN_SOURCES_FOR_VERDICT, power_min_sources

    assert power_min_sources(0.8, alpha=0.05, power=0.8) == MIN_SOURCES_FOR_VERDICT
