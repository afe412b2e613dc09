"""Correlations and the two-stage bootstrap used by the evaluation report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from molw2s.analysis.correlations import (
    average_ranks,
    average_ranks_rows,
    batched_correlations,
    bootstrap_correlations,
    correlation,
    correlations_frame,
)


def _table(n_models: int, n_seeds: int, slope: float, noise: float, seed: int = 0) -> pd.DataFrame:
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


def test_point_estimate_uses_seed_means():
    table = _table(8, 3, slope=1.0, noise=0.05)
    res = {(r.predictor, r.method): r for r in bootstrap_correlations(table, ["M"], ["err_w2s"], n_boot=200)}
    means = table.groupby("weak")[["M", "err_w2s"]].mean()
    expected = stats.spearmanr(means["M"], means["err_w2s"]).statistic
    assert res[("M", "spearman")].value == pytest.approx(expected)
    assert res[("M", "spearman")].n_models == 8 and res[("M", "spearman")].n_rows == 24


def test_strong_relation_gives_tight_positive_interval():
    table = _table(10, 3, slope=1.0, noise=0.02)
    res = next(r for r in bootstrap_correlations(table, ["M"], ["err_w2s"], n_boot=500) if r.method == "spearman")
    assert res.value > 0.95
    assert 0.7 < res.ci_low <= res.value <= res.ci_high <= 1.0


def test_no_relation_gives_interval_covering_zero():
    table = _table(12, 3, slope=0.0, noise=1.0, seed=3)
    for r in bootstrap_correlations(table, ["M"], ["err_w2s"], n_boot=500):
        assert r.ci_low < 0 < r.ci_high


def test_bootstrap_is_deterministic_and_frame_shape():
    table = _table(6, 2, slope=1.0, noise=0.3)
    a = bootstrap_correlations(table, ["M"], ["err_w2s"], n_boot=100, seed=5)
    b = bootstrap_correlations(table, ["M"], ["err_w2s"], n_boot=100, seed=5)
    assert a == b
    frame = correlations_frame(a)
    assert list(frame["method"]) == ["spearman", "kendall", "pearson"]


def test_missing_column_is_named():
    with pytest.raises(KeyError, match="PredGap"):
        bootstrap_correlations(_table(4, 1, 1.0, 0.1), ["PredGap"], ["err_w2s"])


def test_model_bootstrap_interval_contains_point_estimate_and_seed_resampling_widens_it():
    table = _table(8, 3, slope=1.0, noise=0.15, seed=2)
    models = {r.method: r for r in bootstrap_correlations(table, ["M"], ["err_w2s"], n_boot=400)}
    both = {
        r.method: r for r in bootstrap_correlations(table, ["M"], ["err_w2s"], n_boot=400, resample="models_and_seeds")
    }
    for method in ("spearman", "pearson"):
        assert models[method].ci_low <= models[method].value <= models[method].ci_high
        assert both[method].value == models[method].value  # same point estimate
        assert both[method].ci_low <= models[method].ci_low
    with pytest.raises(ValueError, match="resample"):
        bootstrap_correlations(table, ["M"], ["err_w2s"], resample="cells")


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


def test_bootstrap_draws_the_same_resamples_as_a_plain_loop():
    """The batched bootstrap equals the obvious loop: draw a resample of models, correlate
    their seed means with scipy, repeat; percentile interval."""
    table = _table(9, 3, slope=1.0, noise=0.4, seed=6)
    got = {r.method: r for r in bootstrap_correlations(table, ["M"], ["err_w2s"], n_boot=300, seed=11)}
    means = table.groupby("weak")[["M", "err_w2s"]].mean().to_numpy()
    rng = np.random.default_rng(11)
    draws = []
    for _ in range(300):
        sample = means[rng.integers(0, 9, size=9)]
        draws.append([stats.spearmanr(sample[:, 0], sample[:, 1]).statistic, stats.pearsonr(*sample.T).statistic])
    low, high = np.quantile(np.array(draws), [0.025, 0.975], axis=0)
    assert got["spearman"].ci_low == pytest.approx(low[0], abs=1e-12)
    assert got["spearman"].ci_high == pytest.approx(high[0], abs=1e-12)
    assert got["pearson"].ci_low == pytest.approx(low[1], abs=1e-12)
    assert got["pearson"].ci_high == pytest.approx(high[1], abs=1e-12)
