"""``molw2s multicap`` end to end on the demo tasks (tiny settings): report, determinism, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from molw2s.cli import app

TINY = [
    "strong=ecfp2-256",
    "weak=[maccs,ecfp2-64]",
    "splits.seeds=[0,1]",
    "splits.n_weak=60",
    "splits.n_strong=100",
    "splits.frac=[0.9,0.05,0.05]",
    "student.max_iter=50",
    "student.stage2_max_iter=50",
    "selection.fractions=[0.5,1.0]",
    "selection.reward.folds=3",
    "bootstrap.rounds=2",
]


def _run(tmp_path, name, *extra):
    args = ["multicap", "configs/multicap_demo.yaml", "--run-dir", str(tmp_path / name), "--no-progress", *TINY, *extra]
    return CliRunner().invoke(app, args)


def test_multicap_cli_writes_a_deterministic_report(tmp_path):
    first = _run(tmp_path, "a", "tasks=[nci_logp,nci_tpsa]")
    assert first.exit_code == 0, first.output
    report = tmp_path / "a" / "report"
    for name in (
        "report.md",
        "report.html",
        "results.json",
        "selection_summary.csv",
        "figures/selection.png",
        "figures/independence.png",
        "figures/bootstrapping.png",
    ):
        assert (report / name).is_file(), name
    results = json.loads((report / "results.json").read_text())
    assert {"independence", "quality", "diversity", "bootstrapping", "selection", "selection_pooled"} <= set(
        results["summaries"]
    )
    assert (
        "oracle (upper bound)" in (report / "report.md").read_text()
        or "upper bound" in (report / "report.md").read_text()
    )
    second = _run(tmp_path, "b", "tasks=[nci_logp,nci_tpsa]", "experiments=[selection]")
    assert second.exit_code == 0, second.output
    again_records = json.loads((tmp_path / "b" / "report" / "results.json").read_text())["records"]
    assert again_records["selection"] == results["records"]["selection"]  # same config twice: same numbers
    cells = sorted((tmp_path / "a" / "cells").iterdir())
    mtimes = [c.stat().st_mtime_ns for c in cells]
    again = _run(tmp_path, "a", "tasks=[nci_logp,nci_tpsa]")
    assert again.exit_code == 0 and [c.stat().st_mtime_ns for c in cells] == mtimes  # resumed from the cells


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["tasks=[nci_logp]", "splits.n_weak=4000", "splits.n_strong=1000"], "capability nci_logp"),
        (["tasks=[nci_logp]", "selection.fractions=[0.5,1.5]"], "(0, 1]"),
        (["tasks=[nci_logp]", "splits.min_test=1000"], "capability nci_logp"),
    ],
)
def test_multicap_cli_bad_input_is_a_clear_error(tmp_path, extra, message):
    result = _run(tmp_path, "bad", *extra)
    assert result.exit_code != 0
    assert message in str(result.exception) + result.output
