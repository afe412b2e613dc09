"""Choosing the strong student across finished runs (``molw2s report --compare-strong``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from molw2s.cli import app
from molw2s.errors import DataError
from molw2s.experiment.strong_choice import compare_strong


def _run(tmp_path, name, strong, cells):
    report = tmp_path / name / "report"
    report.mkdir(parents=True)
    task = {"correlations": [], "interpretation": "", "predgap_check_spearman": 0.0, "regime": {"status": "w2s"}}
    (report / "results.json").write_text(json.dumps({"name": name, "config": {"strong": strong}, "tasks": {"t": task}}))
    pd.DataFrame(cells).to_csv(report / "cells.csv", index=False)
    return tmp_path / name


def _cells(err_w2s, m, k_s, err_sc, missed=0.3):
    """Cells of two weak models; ``missed`` is M_F / k_s, the mean missed part per strong direction."""
    return [
        {
            "task": "t",
            "seed": s,
            "weak": w,
            "err_w2s": err_w2s[i],
            "M": m,
            "M_F": missed * k_s,
            "k_s": k_s,
            "err_sc": err_sc,
        }
        for s in range(3)
        for i, w in enumerate(("a", "b"))
    ]


def test_raw_m_prefers_the_smaller_strong_model_and_normalised_m_does_not(tmp_path):
    # big: better students (MSE 1 vs 4) but a larger k_s, hence larger raw M (0.9 vs 0.5)
    # (it misses less per principal direction: M_F / k_s 0.1 against 0.4)
    big = _run(tmp_path, "big", "strong_big", _cells([1.0, 1.0], m=0.9, k_s=100, err_sc=0.5, missed=0.1))
    small = _run(tmp_path, "small", "strong_small", _cells([4.0, 4.0], m=0.5, k_s=5, err_sc=2.0, missed=0.4))
    table = compare_strong([big, small])["t"].set_index("criterion")
    assert table.loc["M (raw)", "mean regret (RMSE)"] == pytest.approx(1.0)  # picks small: RMSE 2 vs 1
    assert table.loc["M_F / k_s", "mean regret (RMSE)"] == pytest.approx(0.0)
    assert table.loc["Err_sc", "picked the best"] == "6/6" and table.loc["M (raw)", "units"] == 6
    result = CliRunner().invoke(app, ["report", str(big), "--compare-strong", str(small)])
    assert result.exit_code == 0, result.output
    assert "choosing the strong student" in result.output and "| M_F / k_s | 0 |" in result.output


def test_runs_that_share_no_cell_are_refused(tmp_path):
    one = _run(tmp_path, "one", "s1", _cells([1.0, 1.0], m=0.9, k_s=10, err_sc=0.5))
    other = _cells([1.0, 1.0], m=0.9, k_s=10, err_sc=0.5)
    two = _run(tmp_path, "two", "s2", [{**c, "task": "u"} for c in other])
    with pytest.raises(DataError, match="share no"):
        compare_strong([one, two])
    with pytest.raises(DataError, match="at least two"):
        compare_strong([one])
