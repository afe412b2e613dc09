"""Within-seed, partial and paired analyses against independent references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LinearRegression

from molw2s.analysis.paired import PairedStat, paired_analysis, paired_sentence, partial_spearman, rank_r2_gain


def test_partial_spearman_equals_the_textbook_formula():
    rng = np.random.default_rng(0)
    z = rng.normal(size=40)
    x = z + rng.normal(size=40)
    y = z + 0.5 * x + rng.normal(size=40)
    r = {k: stats.spearmanr(a, b).statistic for k, (a, b) in {"xy": (x, y), "xz": (x, z), "yz": (y, z)}.items()}
    expected = (r["xy"] - r["xz"] * r["yz"]) / np.sqrt((1 - r["xz"] ** 2) * (1 - r["yz"] ** 2))
    assert partial_spearman(x, y, z) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(partial_spearman(x[:3], y[:3], z[:3]))


def test_rank_r2_gain_against_sklearn():
    rng = np.random.default_rng(1)
    base, added = rng.normal(size=30), rng.normal(size=30)
    y = base + 2 * added
    ry, rb, ra = (stats.rankdata(v) for v in (y, base, added))
    both = LinearRegression().fit(np.column_stack([rb, ra]), ry).score(np.column_stack([rb, ra]), ry)
    alone = LinearRegression().fit(rb[:, None], ry).score(rb[:, None], ry)
    assert rank_r2_gain(y, base, added) == pytest.approx(both - alone, abs=1e-12)
    assert rank_r2_gain(base, base, added) == pytest.approx(0.0, abs=1e-12)  # nothing left to explain


def _table(n_models: int = 10, n_seeds: int = 3, seed: int = 0) -> pd.DataFrame:
    """M ranks Err_w2s perfectly within each seed; Err_w is unrelated; seeds shift every
    model's error by a large shared offset (test-set difficulty)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_seeds):
        offset = 10.0 * s
        for i in range(n_models):
            rows.append(
                {
                    "weak": f"w{i}",
                    "seed": s,
                    "M": i + 0.1 * rng.normal(),
                    "err_w": rng.normal(),
                    "err_w2s": offset + i + 0.01 * rng.normal(),
                }
            )
    return pd.DataFrame(rows)


def test_paired_analysis_on_a_known_case():
    stats_ = paired_analysis(_table(), predictor="M", baseline="err_w", measured="err_w2s", n_boot=300)
    by_name = {p.statistic: p for p in stats_}
    within_m = by_name["within-seed rho(M, err_w2s)"]
    assert within_m.value == pytest.approx(1.0) and within_m.ci_low > 0.9
    assert abs(by_name["within-seed rho(err_w, err_w2s)"].value) < 0.5
    assert by_name["partial rho(M, err_w2s | err_w)"].value > 0.95
    assert by_name["rank R^2 gain of M over err_w"].value > 0.5
    diff = by_name["rho(M, err_w2s) - rho(err_w, err_w2s)"]
    assert diff.ci_low > 0 and "M ranks Err_w2s better than Err_w" in paired_sentence(stats_, "Err_w")
    assert "adds information beyond Err_w (partial rho above 0)" in paired_sentence(stats_, "Err_w")
    # the same analysis with the roles swapped trails
    swapped = paired_analysis(_table(), predictor="err_w", baseline="M", measured="err_w2s", n_boot=300)
    assert "Err_w ranks Err_w2s worse than M" in paired_sentence(swapped, "M", "Err_w")
    assert paired_analysis(_table(), predictor="M", baseline="err_w", measured="err_w2s", n_boot=300) == stats_


def test_paired_sentence_follows_both_intervals():
    """An unresolved difference with a partial rho below zero is said so, not 'cannot be told apart'."""

    def stats(diff, partial):
        blank = PairedStat("x", 0.0, -1.0, 1.0, 8)
        return [blank, blank, PairedStat("partial", *partial, 8, 3), blank, PairedStat("diff", *diff, 8)]

    text = paired_sentence(stats((0.1, -0.2, 0.4), (-0.28, -0.81, -0.05)), "Err_w")
    assert "not resolved" in text and "opposite sign (partial rho below 0)" in text
    assert "3 resamples undefined" in text
    text = paired_sentence(stats((0.1, -0.2, 0.4), (0.1, -0.3, 0.5)), "Err_w")
    assert "not resolved" in text and "no information beyond Err_w is shown" in text


def test_point_values_equal_independent_references_with_a_missing_cell():
    """Every paired statistic against scipy / sklearn computed on the table directly; one
    weak model lacks a seed's cell, so that seed's within-seed rho uses the other models."""
    table = _table(n_models=9, n_seeds=3, seed=4)
    table["err_w"] += 0.3 * table["M"]  # some relation to find
    table = table.drop(index=table[(table["weak"] == "w2") & (table["seed"] == 1)].index)
    got = {
        p.statistic: p.value
        for p in paired_analysis(table, predictor="M", baseline="err_w", measured="err_w2s", n_boot=0)
    }
    within = np.mean([stats.spearmanr(g["M"], g["err_w2s"]).statistic for _, g in table.groupby("seed")])
    assert got["within-seed rho(M, err_w2s)"] == pytest.approx(within, abs=1e-12)
    means = table.groupby("weak")[["M", "err_w", "err_w2s"]].mean()
    r = {
        k: stats.spearmanr(means[a], means[b]).statistic
        for k, (a, b) in {"pm": ("M", "err_w2s"), "pb": ("M", "err_w"), "bm": ("err_w", "err_w2s")}.items()
    }
    partial = (r["pm"] - r["pb"] * r["bm"]) / np.sqrt((1 - r["pb"] ** 2) * (1 - r["bm"] ** 2))
    assert got["partial rho(M, err_w2s | err_w)"] == pytest.approx(partial, abs=1e-12)
    assert got["rho(M, err_w2s) - rho(err_w, err_w2s)"] == pytest.approx(r["pm"] - r["bm"], abs=1e-12)
    ry, rb, ra = (stats.rankdata(means[c]) for c in ("err_w2s", "err_w", "M"))
    both = LinearRegression().fit(np.column_stack([rb, ra]), ry).score(np.column_stack([rb, ra]), ry)
    alone = LinearRegression().fit(rb[:, None], ry).score(rb[:, None], ry)
    assert got["rank R^2 gain of M over err_w"] == pytest.approx(both - alone, abs=1e-12)


def test_collinear_ranks_add_nothing():
    rng = np.random.default_rng(2)
    y, base = rng.normal(size=12), rng.normal(size=12)
    assert rank_r2_gain(y, base, 3 * base + 1) == pytest.approx(0.0, abs=1e-12)  # same ranks: lstsq's answer


def test_partial_spearman_is_undefined_when_the_baseline_explains_a_side():
    """x ranked exactly like z leaves residuals of rounding noise; their correlation would be
    noise (what a bootstrap resample of few distinct models often met), so it is NaN."""
    rng = np.random.default_rng(5)
    z = np.repeat(rng.normal(size=5), [1, 2, 1, 3, 1])  # ties, as in a resample drawn with replacement
    y = rng.normal(size=len(z))
    assert np.isnan(partial_spearman(z**3 + 1.0, y, z))
    assert np.isnan(partial_spearman(y, -z, z))
    assert np.isfinite(partial_spearman(y + z, rng.normal(size=len(z)), z))
