"""The evaluation figures: what each draws (artists, axes, scales, titles), from seed means."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from molw2s.analysis.plots import (
    KIND_MARKERS,
    burns_chart,
    model_errors,
    pgr_chart,
    predictor_scatter,
    theory_check_scatter,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _cells(err_sc: float | list[float] = 1.0) -> pd.DataFrame:
    """Two seeds of four weak models; Err_w grows with the model index, seed 1 is harder."""
    sc = [err_sc] * 4 if isinstance(err_sc, float) else err_sc
    rows = []
    for i, kind in enumerate(["transformer", "transformer", "fingerprint", "controlled"]):
        for seed, scale in ((0, 1.0), (1, 3.0)):
            rows.append(
                {
                    "weak": f"w{i}",
                    "seed": seed,
                    "kind": kind,
                    "err_w": scale * (2.0 + i),
                    "err_w2s": scale * (1.5 + 0.5 * i),
                    "err_sc": scale * sc[i],
                    "M": 0.1 * i,
                    "predgap_hat": 0.01 * (i + 1),
                    "predgap": 0.02 * (i + 1) * scale,
                }
            )
    return pd.DataFrame(rows)


def _points(ax) -> np.ndarray:
    return np.concatenate([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])


def test_model_errors_combine_seed_means_not_per_seed_ratios():
    cells = pd.DataFrame(
        {
            "weak": ["a", "a", "b", "b"],
            "err_w": [2.0, 4.0, 1.0, 1.0],
            "err_w2s": [1.5, 2.0, 1.0, 1.0],
            "err_sc": [1.0, 1.0, 1.0, 2.0],
        }
    )
    errors = model_errors(cells)
    # per-seed PGRs 0.5 and 2/3 average to 0.583; the PGR of the seed means is 1.25 / 2
    assert errors.loc["a", "pgr"] == pytest.approx(0.625)
    assert np.isnan(errors.loc["b", "pgr"])  # Err_w <= Err_sc: no gap to recover
    assert errors.loc["a", "rmse_w"] == pytest.approx(np.sqrt(3.0))  # not the mean of sqrt(2), sqrt(4)
    assert errors["kind"].tolist() == ["other", "other"]


def test_burns_chart_rmse_of_seed_means_with_one_ceiling_line():
    cells = _cells()
    ax = burns_chart(cells, units="log mol/L", title="esol:").axes[0]
    errors = model_errors(cells)
    # weakest (largest Err_w) on the left
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w3", "w2", "w1", "w0"]
    points = {tuple(np.round(p, 9)) for p in _points(ax)}
    for col in ("rmse_w", "rmse_w2s"):
        expected = errors[col].reindex(["w3", "w2", "w1", "w0"]).to_numpy()
        assert {(float(x), round(float(y), 9)) for x, y in enumerate(expected)} <= points
    ceiling = [line for line in ax.get_lines() if line.get_label() == "strong ceiling (Err_sc)"]
    assert len(ceiling) == 1 and ceiling[0].get_ydata()[0] == pytest.approx(np.sqrt(2.0))  # sqrt(mean(1, 3))
    assert "log mol/L" in ax.get_ylabel() and "sqrt(seed-mean MSE)" in ax.get_ylabel()
    assert len(ax.collections[0].get_segments()) == 4  # one weak -> W2S line per model
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"kind: transformer", "kind: fingerprint", "kind: controlled"} <= set(labels)
    assert sum(isinstance(c, PathCollection) for c in ax.collections) == 2 * 3  # (weak, W2S) x kinds


def test_burns_chart_marks_the_ceiling_per_model_when_it_differs_and_orders_by_m():
    cells = _cells([1.0, 1.1, 1.2, 1.3])
    ax = burns_chart(cells, order_by="M").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w3", "w2", "w1", "w0"]
    assert not [line for line in ax.get_lines() if "ceiling" in str(line.get_label())]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "strong ceiling (Err_sc, per model)" in labels


def test_pgr_chart_plots_pgr_of_seed_means_and_counts_models_without_one():
    cells = _cells([1.0, 1.0, 1.0, 10.0])  # w3: Err_w 5 < Err_sc 10 on average
    ax = pgr_chart(cells, title="t:").axes[0]
    errors = model_errors(cells)
    xs = sorted(float(x) for x, _ in _points(ax) if np.isfinite(x))
    assert xs == pytest.approx(sorted(errors["pgr"].dropna()))
    assert errors.loc["w0", "pgr"] == pytest.approx((2.0 - 1.5) / (2.0 - 1.0))
    assert "1 model(s) not weaker than the ceiling" in ax.get_title()
    assert {tuple(line.get_xdata()) for line in ax.get_lines()} == {(0.0, 0.0), (1.0, 1.0)}
    height = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert sorted(height, key=height.__getitem__, reverse=True) == ["w3", "w2", "w1", "w0"]  # the first on top


def test_predictor_scatter_on_rank_axes_with_kinds_and_excluded_models():
    cells = _cells()
    cells.loc[cells.weak == "w3", "err_w2s"] = 0.0  # breaks the ranking; excluded below
    ax = predictor_scatter(cells, "M", "err_w2s", excluded={"w3"}, title="t:").axes[0]
    models = {line.get_label(): line for line in ax.get_lines()}
    assert "least-squares trend" not in models
    diagonal = models.pop("perfect rank agreement")
    assert list(diagonal.get_xdata()) == [1, 4]
    ranks = {name: (float(line.get_xdata()[0]), float(line.get_ydata()[0])) for name, line in models.items()}
    assert ranks == {"w0": (1, 2), "w1": (2, 3), "w2": (3, 4), "w3 (excluded)": (4, 1)}
    assert models["w3 (excluded)"].get_markerfacecolor() == "none"
    assert models["w0"].get_markerfacecolor() != "none"
    assert models["w0"].get_marker() == KIND_MARKERS["transformer"]
    assert models["w2"].get_marker() == KIND_MARKERS["fingerprint"]
    assert models["w3 (excluded)"].get_marker() == KIND_MARKERS["controlled"]
    assert len({str(line.get_color()) for line in models.values()}) == 4  # a colour per model
    assert "Spearman rho = 1.00 (n = 3 weak models; 1 excluded, hollow)" in ax.get_title()
    assert "rank" in ax.get_xlabel() and "rank" in ax.get_ylabel()
    assert not ax.texts  # no point labels that could overlap
    # without exclusion the outlier counts
    everything = predictor_scatter(cells, "M", "err_w2s").axes[0]
    assert "Spearman rho = -0.20 (n = 4 weak models)" in everything.get_title()


def test_theory_check_is_log_log_with_seed_means_and_drops_non_positive_cells():
    cells = _cells()
    cells.loc[(cells.weak == "w0") & (cells.seed == 0), "predgap"] = 0.0
    ax = theory_check_scatter(cells, title="t:").axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "1 of 8 cells <= 0 not shown (log axes)" in ax.get_title()
    assert "Spearman rho = 1.00" in ax.get_title()
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in scatters) == 7 + 4  # shown cells + one mean per model
    means = [c for c in scatters if c.get_label() in {"w0", "w1", "w2", "w3"}]
    assert len(means) == 4 and all(c.get_sizes()[0] > 40 for c in means)
    w1 = next(c for c in means if c.get_label() == "w1")
    assert tuple(w1.get_offsets()[0]) == pytest.approx((0.02, 0.08))  # seed means of 0.02 and (0.04, 0.12)
    cells_w1 = next(c for c in scatters if len(c.get_offsets()) == 2 and np.allclose(c.get_offsets()[:, 0], 0.02))
    assert np.allclose(cells_w1.get_facecolor()[0][:3], w1.get_facecolor()[0][:3])  # same colour per model
    line = next(line for line in ax.get_lines() if line.get_label() == "y = x")
    assert list(line.get_xdata()) == list(line.get_ydata())
