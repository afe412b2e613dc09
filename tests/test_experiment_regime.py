"""The regime check, PGR of seed-mean errors and selection regret, on hand-made cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from molw2s.experiment.regime import model_regime, task_regime
from molw2s.experiment.selection import selection_regret
from molw2s.w2s.metrics import pgr_of_means


def _cells(rows):
    return pd.DataFrame(rows, columns=["weak", "seed", "err_w", "err_w2s", "err_sc"]).assign(
        gain=lambda f: f["err_w"] - f["err_w2s"]
    )


def test_pgr_is_of_the_seed_means_not_a_mean_of_ratios():
    # seed 0: PGR 0.9; seed 1: Err_w barely above Err_sc, PGR -9: the mean of ratios is -4.05
    cells = _cells([("a", 0, 2.0, 1.1, 1.0), ("a", 1, 1.1, 1.9, 1.0)])
    per_seed = ((cells.err_w - cells.err_w2s) / (cells.err_w - cells.err_sc)).mean()
    assert per_seed == pytest.approx(-3.55)
    row = model_regime(cells, margin=0.1).iloc[0]
    assert row["pgr"] == pytest.approx((1.55 - 1.5) / (1.55 - 1.0))
    assert row["cells_gain_positive"] == 1 and row["n_cells"] == 2
    assert np.isnan(pgr_of_means(1.0, 0.5, 1.0))  # no gap to recover: undefined, not infinite


def test_weaker_needs_the_margin_and_the_task_status_follows():
    cells = _cells(
        [("a", 0, 2.0, 1.5, 1.0), ("b", 0, 1.05, 1.0, 1.0), ("c", 0, 0.9, 1.0, 1.0), ("d", 0, 1.1, 1.05, 1.0)]
    )
    models = model_regime(cells, margin=0.1)
    assert dict(zip(models.weak, models.weaker, strict=True)) == {"a": True, "b": False, "c": False, "d": True}
    regime = task_regime(cells, models, 0.1)
    assert regime.status == "partial" and regime.not_weaker == ("b", "c")
    assert regime.cells_gain_positive == 3 and "not weaker than the ceiling by 10%: b, c" in regime.sentence("t")
    everyone = model_regime(cells, margin=0.0)
    assert task_regime(cells, everyone[everyone.weaker], 0.0).status == "w2s"
    none = model_regime(cells[cells.weak.isin(["b", "c"])], margin=0.1)
    assert "NOT a W2S regime" in task_regime(cells, none, 0.1).sentence("t")


def test_selection_regret_against_the_oracle_in_rmse_units():
    rows = []
    for seed in range(3):
        # err_w2s (MSE): a 1.0, b 4.0, c 9.0 -> RMSE 1, 2, 3; M ranks them right, Err_w wrong
        for weak, mse, m, err_w in (("a", 1.0, 0.1, 5.0), ("b", 4.0, 0.2, 1.0), ("c", 9.0, 0.3, 2.0)):
            rows.append({"weak": weak, "seed": seed, "err_w2s": mse, "M": m, "err_w": err_w,
                         "predgap_hat": m, "misfit": 0.0})  # fmt: skip
    regret = selection_regret(pd.DataFrame(rows)).set_index("criterion")
    assert regret.loc["M", "mean regret (RMSE)"] == 0.0 and regret.loc["M", "picked the best"] == "3/3"
    assert regret.loc["Err_w", "mean regret (RMSE)"] == pytest.approx(1.0)  # picks b: RMSE 2 vs 1
    assert regret.loc["random", "mean regret (RMSE)"] == pytest.approx(1.0)  # mean RMSE 2 minus 1
    assert regret.loc["Err_w - Misfit", "mean regret (RMSE)"] == pytest.approx(1.0)
    assert regret.loc["M", "units"] == 3 and regret.loc["M", "candidates"] == 3


def test_values_are_rounded_to_what_their_spread_supports():
    from molw2s.experiment.run_statistics import round_to_uncertainty

    assert round_to_uncertainty(1.23456, 0.04) == "1.23 +- 0.04"
    assert round_to_uncertainty(1.23456, 0.012) == "1.235 +- 0.012"  # sd starting with 1: two digits
    assert round_to_uncertainty(-0.3, 2.0) == "0 +- 2"  # no "-0"
    assert round_to_uncertainty(812.3, 35.0) == "812 +- 35"  # never rounded left of the decimal point
    assert round_to_uncertainty(0.5, 0.0) == "0.5" and round_to_uncertainty(float("nan"), 1.0) == "n/a"
