"""``molw2s multicap`` end to end on the demo tasks (tiny settings): report, determinism,
resuming, errors. One full run is shared by the tests that read or repeat it.

Every selection method is exercised by tests/test_multicap.py; here three suffice (random is
the baseline, reward the method, oracle the upper bound the report must label)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from molw2s.cli import app

TINY = [
    "tasks=[nci_logp,nci_tpsa]",
    "strong=ecfp2-256",
    "weak=[ecfp2-64,ecfp4-128]",
    "splits.seeds=[0,1]",
    "splits.n_weak=60",
    "splits.n_strong=100",
    "splits.frac=[0.9,0.05,0.05]",
    "student.max_iter=50",
    "student.stage2_max_iter=50",
    "selection.methods=[random,reward,oracle]",
    "selection.fractions=[0.5]",
    "selection.reward.folds=3",
    "bootstrap.rounds=2",
]


def _run(run_dir: Path, *extra: str) -> Any:
    args = ["multicap", "configs/multicap_demo.yaml", "--run-dir", str(run_dir), "--no-progress", *TINY, *extra]
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One full tiny run (every experiment, two capabilities, two seeds): its run folder and
    the molw2s cache its embeddings went to (the session cache)."""
    run_dir = tmp_path_factory.mktemp("multicap") / "a"
    result = _run(run_dir)
    assert result.exit_code == 0, result.output
    return run_dir, os.environ["MOLW2S_DATA_DIR"]


@pytest.fixture
def same_cache(demo_run: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo run's folder, with its cache in use (as for a user's second run)."""
    run_dir, cache = demo_run
    monkeypatch.setenv("MOLW2S_DATA_DIR", cache)
    return run_dir


def test_multicap_cli_writes_the_report(demo_run):
    report = demo_run[0] / "report"
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
    assert "`oracle` is an upper bound" in (report / "report.md").read_text()


def test_multicap_cli_is_deterministic(same_cache, tmp_path):
    again = _run(tmp_path / "b", "experiments=[selection]", "splits.seeds=[0]")
    assert again.exit_code == 0, again.output
    first = json.loads((same_cache / "report" / "results.json").read_text())["records"]["selection"]
    second = json.loads((tmp_path / "b" / "report" / "results.json").read_text())["records"]["selection"]
    assert second == [r for r in first if r["seed"] == 0]  # same config, fresh folder: same numbers


def test_multicap_cli_resumes_from_its_cells(same_cache):
    cells = sorted((same_cache / "cells").iterdir())
    mtimes = [c.stat().st_mtime_ns for c in cells]
    again = _run(same_cache)
    assert again.exit_code == 0, again.output
    assert [c.stat().st_mtime_ns for c in cells] == mtimes


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["tasks=[nci_logp]", "splits.n_weak=4000", "splits.n_strong=1000"], "capability nci_logp"),
        (["tasks=[nci_logp]", "selection.fractions=[0.5,1.5]"], "(0, 1]"),
        (["tasks=[nci_logp]", "splits.min_test=1000"], "capability nci_logp"),
        (["tasks=[nci_logp]", "experiments=[independence,quality]"], "experiments: independence"),
    ],
)
def test_multicap_cli_bad_input_is_a_clear_error(tmp_path, extra, message):
    result = _run(tmp_path / "bad", *extra)
    assert result.exit_code != 0
    assert message in str(result.exception) + result.output


def test_multicap_cli_with_one_task_writes_the_report_and_reruns(tmp_path):
    """One capability: every experiment that applies (independence needs two) runs, the
    report is written, and a rerun reads the cells back and writes it again."""
    run_dir = tmp_path / "one"
    for _ in range(2):
        result = _run(run_dir, "tasks=[nci_logp]", "splits.seeds=[0]")
        assert result.exit_code == 0, result.output
        results = json.loads((run_dir / "report" / "results.json").read_text())
        assert results["config"]["experiments"] == ["quality", "bootstrapping", "selection"]
        assert set(results["records"]) == {"quality", "bootstrapping", "selection"}
        assert "Self-bootstrapping" in (run_dir / "report" / "report.md").read_text()
    assert not list((run_dir / "cells").glob("independence*"))


def test_multicap_cli_finetunes_the_strong_checkpoint(tmp_path, make_tiny_checkpoint):
    from molw2s.data.tasks import load_task

    model = make_tiny_checkpoint(tmp_path / "model", list(load_task("nci_logp").smiles))
    finetune = [
        f"strong=bert:{model}",
        "student.kind=finetune",
        "student.finetune.epochs=2",
        "student.finetune.batch_size=32",
        "experiments=[independence]",
        "splits.seeds=[0]",
    ]
    result = _run(tmp_path / "ft", *finetune)
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "ft" / "report" / "results.json").read_text())["records"]["independence"]
    assert {(r["capability"], r["trained_with"]) for r in records} == {
        ("nci_logp", "alone"),
        ("nci_logp", "nci_tpsa"),
        ("nci_tpsa", "alone"),
        ("nci_tpsa", "nci_logp"),
    }
    assert all(np.isfinite(r["err_w2s"]) for r in records)
    runs = sorted((tmp_path / "ft" / "students").glob("*.json"))
    assert len(runs) == 3  # two capabilities alone and the pair
    rerun = _run(tmp_path / "ft", *finetune, "experiments=[bootstrapping]", "bootstrap.rounds=1")
    assert rerun.exit_code == 0, rerun.output
    assert len(sorted((tmp_path / "ft" / "students").glob("*.json"))) == 4  # the pair on weak labels is reused


def test_multicap_cli_finetune_needs_a_checkpoint(tmp_path):
    result = _run(tmp_path / "bad", "student.kind=finetune")
    assert result.exit_code != 0
    assert "is a featuriser, not a transformer checkpoint" in str(result.exception) + result.output
