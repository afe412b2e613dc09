"""The batched correlation kernels and the cluster bootstrap over weak models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from molw2s.analysis.correlations import (
    average_ranks,
    average_ranks_rows,
    batched_correlations,
    cluster_bootstrap,
    correlation,
)


def _table(n_models: int, n_seeds: int, slope: float, noise: float, seed: int = 0) -> pd.DataFrame:
    """One row per (weak model, seed): a predictor M and an error rising with it by ``slope``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_models):
        m = i / n_models
        for s in range(n_seeds):
            rows.append(
                {
                    "weak": f"w{i:02d}",
                    "seed": s,
                    "M": m + 0.01 * rng.normal(),
                    "err_w2s": slope * m + noise * rng.normal(),
                }
            )
    return pd.DataFrame(rows)


def test_correlation_matches_scipy_and_handles_constants():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=30), rng.normal(size=30)
    assert correlation(x, y, "spearman") == pytest.approx(stats.spearmanr(x, y).statistic)
    assert correlation(x, y, "kendall") == pytest.approx(stats.kendalltau(x, y).statistic)
    assert correlation(x, y, "pearson") == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert np.isnan(correlation(np.ones(5), y[:5], "pearson"))
    with pytest.raises(ValueError, match="unknown correlation"):
        correlation(x, y, "cosine")


@pytest.mark.parametrize("n", [2, 3, 7, 40, 301])
@pytest.mark.parametrize("ties", [False, True])
def test_numpy_correlations_equal_scipys(n, ties):
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=n), rng.normal(size=n) + 0.5 * np.arange(n) / n
    if ties:  # heavy ties on both sides, as with rounded or saturated predictors
        x, y = np.round(x * 2) / 2, np.round(y)
        y[0] = y[1] + 1.0  # keep y non-constant at n = 2
    np.testing.assert_array_equal(average_ranks(x), stats.rankdata(x))
    reference = {
        "spearman": stats.spearmanr(x, y).statistic,
        "kendall": stats.kendalltau(x, y).statistic,
        "pearson": stats.pearsonr(x, y).statistic,
    }
    for method, expected in reference.items():
        assert correlation(x, y, method) == pytest.approx(expected, abs=1e-12), method


def test_batched_rows_equal_one_call_per_row_and_scipy_ranks():
    rng = np.random.default_rng(4)
    X, Y = np.round(rng.normal(size=(50, 9)) * 2) / 2, rng.normal(size=(50, 9))  # heavy ties in X
    X[3] = 1.0  # a constant row: NaN
    np.testing.assert_array_equal(average_ranks_rows(X), np.array([stats.rankdata(row) for row in X]))
    for method in ("spearman", "kendall", "pearson"):
        batched = batched_correlations(X, Y, method)
        assert np.isnan(batched[3])
        expected = [correlation(x, y, method) for x, y in zip(X, Y, strict=True)]
        np.testing.assert_allclose(batched, expected, rtol=0, atol=1e-15)
    assert np.isnan(batched_correlations(X[:, :1], Y[:, :1], "pearson")).all()


def _seed_means(table: pd.DataFrame) -> np.ndarray:
    """(n_models, 2): each weak model's mean over seeds of M and of err_w2s."""
    means: np.ndarray = table.groupby("weak", sort=True)[["M", "err_w2s"]].mean().to_numpy()
    return means


def _correlations_of(means: np.ndarray, methods: tuple[str, ...]):
    """The statistic of a correlation bootstrap: per resample of models, each method's
    correlation of their seed means."""

    def statistic(picks: np.ndarray) -> np.ndarray:
        sample = means[picks]  # (B, n_models, 2)
        return np.stack([batched_correlations(sample[..., 0], sample[..., 1], m) for m in methods], axis=1)

    return statistic


def test_bootstrap_draws_the_same_resamples_as_a_plain_loop():
    """The batched bootstrap equals the obvious loop: draw a resample of models, correlate
    their seed means with scipy, repeat; percentile interval."""
    means = _seed_means(_table(9, 3, slope=1.0, noise=0.4, seed=6))
    statistic = _correlations_of(means, ("spearman", "pearson"))
    point, low, high, dropped = cluster_bootstrap(
        9, statistic, n_boot=300, confidence=0.95, rng=np.random.default_rng(11)
    )
    rng = np.random.default_rng(11)
    draws = []
    for _ in range(300):
        sample = means[rng.integers(0, 9, size=9)]
        draws.append([stats.spearmanr(sample[:, 0], sample[:, 1]).statistic, stats.pearsonr(*sample.T).statistic])
    expected_low, expected_high = np.quantile(np.array(draws), [0.025, 0.975], axis=0)
    assert point[0] == pytest.approx(stats.spearmanr(means[:, 0], means[:, 1]).statistic, abs=1e-12)
    assert point[1] == pytest.approx(stats.pearsonr(means[:, 0], means[:, 1]).statistic, abs=1e-12)
    np.testing.assert_allclose(low, expected_low, rtol=0, atol=1e-12)
    np.testing.assert_allclose(high, expected_high, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(dropped, [0, 0])


def test_strong_relation_gives_tight_positive_interval_and_none_covers_zero():
    methods = ("spearman", "kendall", "pearson")
    strong = _seed_means(_table(10, 3, slope=1.0, noise=0.02))
    point, low, high, _ = cluster_bootstrap(
        10, _correlations_of(strong, methods), n_boot=500, confidence=0.95, rng=np.random.default_rng(0)
    )
    assert point[0] > 0.95
    assert 0.7 < low[0] <= point[0] <= high[0] <= 1.0
    null = _seed_means(_table(12, 3, slope=0.0, noise=1.0, seed=3))
    _, low, high, _ = cluster_bootstrap(
        12, _correlations_of(null, methods), n_boot=500, confidence=0.95, rng=np.random.default_rng(0)
    )
    assert (low < 0).all() and (high > 0).all()


def test_undefined_resamples_are_dropped_and_counted_per_statistic():
    """Four models, two of which share their predictor value: a resample drawing only
    those two (or one model four times) has a constant predictor, so its correlation is
    undefined (skipped, counted), while an always-defined statistic drops nothing."""
    x, y = np.array([0.0, 0.0, 1.0, 2.0]), np.array([0.0, 1.0, 3.0, 2.0])

    def statistic(picks: np.ndarray) -> np.ndarray:
        return np.stack([batched_correlations(x[picks], y[picks], "spearman"), y[picks].mean(axis=1)], axis=1)

    point, low, high, dropped = cluster_bootstrap(
        4, statistic, n_boot=400, confidence=0.9, rng=np.random.default_rng(2)
    )
    rng = np.random.default_rng(2)
    picks = [rng.integers(0, 4, size=4) for _ in range(400)]
    constant = [np.ptp(x[p]) == 0 or np.ptp(y[p]) == 0 for p in picks]
    kept = [stats.spearmanr(x[p], y[p]).statistic for p, c in zip(picks, constant, strict=True) if not c]
    assert dropped.dtype.kind == "i" and 0 < sum(constant) < 400
    np.testing.assert_array_equal(dropped, [sum(constant), 0])
    np.testing.assert_allclose([low[0], high[0]], np.quantile(kept, [0.05, 0.95]), rtol=0, atol=1e-12)
    assert point[1] == pytest.approx(y.mean()) and low[1] <= point[1] <= high[1]


def test_too_few_models_give_no_interval_and_a_seed_repeats_the_bootstrap():
    means = _seed_means(_table(6, 2, slope=1.0, noise=0.3))
    statistic = _correlations_of(means, ("spearman",))
    point, low, high, dropped = cluster_bootstrap(
        2, _correlations_of(means[:2], ("pearson",)), n_boot=50, confidence=0.95, rng=np.random.default_rng(0)
    )
    assert np.isfinite(point).all() and np.isnan(low).all() and np.isnan(high).all()
    np.testing.assert_array_equal(dropped, [0])
    first, second = (
        cluster_bootstrap(6, statistic, n_boot=100, confidence=0.95, rng=np.random.default_rng(5)) for _ in range(2)
    )
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
