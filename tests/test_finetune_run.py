"""``molw2s finetune`` end to end on a small CSV task with a tiny checkpoint: the report's
files, identical numbers from two fresh runs, finished seeds reused, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from molw2s.cli import app
from molw2s.errors import ConfigError, DataError
from molw2s.experiment.config import load_finetune_config
from molw2s.experiment.finetune import run_finetune


@pytest.fixture(scope="module")
def setup(tmp_path_factory, logp_task_with_checkpoint):
    """A finetuning config of a 200-molecule CSV task and a tiny checkpoint."""
    csv, model = logp_task_with_checkpoint
    root = tmp_path_factory.mktemp("ft_run")
    cfg = {
        "name": "ft_test",
        "model": str(model),
        "tasks": [{"name": str(csv), "label_col": "logp"}],
        "splits": {"method": "random", "seeds": [0, 1]},
        "training": {"epochs": 2, "batch_size": 16, "lr": 1e-3, "device": "cpu"},
        "baselines": {"features": ["checkpoint", "maccs"], "models": ["ridge", "svr"]},
    }
    path = root / "ft.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli_writes_the_report_and_two_fresh_runs_agree(setup, tmp_path):
    runner = CliRunner()
    for name in ("a", "b"):
        result = runner.invoke(app, ["finetune", str(setup), "--run-dir", str(tmp_path / name), "--no-progress"])
        assert result.exit_code == 0, result.output
    assert "logp200" in result.output and "svr(maccs)" in result.output
    report = tmp_path / "a" / "report"
    for name in (
        "results.json",
        "results.csv",
        "summary.csv",
        "report.md",
        "report.html",
        "figures/parity_logp200.png",
    ):
        assert (report / name).is_file(), name
    a, b = (pd.read_csv(tmp_path / n / "report" / "results.csv") for n in ("a", "b"))
    pd.testing.assert_frame_equal(a, b)
    assert set(a["method"]) == {"finetune", "ridge(checkpoint)", "svr(checkpoint)", "ridge(maccs)", "svr(maccs)"}
    assert sorted(a["seed"].unique()) == [0, 1] and np.isfinite(a["rmse"]).all()
    results = json.loads((report / "results.json").read_text())
    cell = results["cells"][0]
    assert len(cell["predictions"]["finetune"]) == len(cell["y_test"]) == cell["sizes"]["test"]
    assert not (tmp_path / "a" / "state").exists() or not any((tmp_path / "a" / "state").iterdir())


def test_finished_seeds_are_read_back(setup, tmp_path, monkeypatch):
    config = load_finetune_config(setup, [f"run_dir={tmp_path}", "splits.seeds=[0]", "baselines.models=[ridge]"])
    first = run_finetune(config, progress=False)

    def fail(*args, **kwargs):
        raise AssertionError("a finished seed was finetuned again")

    monkeypatch.setattr("molw2s.experiment.finetune.finetune_regressor", fail)
    second = run_finetune(config, progress=False)
    assert first["summary"] == second["summary"]


def test_a_split_without_validation_part_and_an_unknown_member_are_errors(setup, tmp_path):
    config = load_finetune_config(setup, [f"run_dir={tmp_path}", "splits.frac=[0.9,0.0,0.1]"])
    with pytest.raises(DataError, match="no validation part"):
        run_finetune(config, progress=False)
    family = Path(__file__).resolve().parents[1] / "configs" / "family_quickstart.yaml"
    config = load_finetune_config(setup, [f"family={family}", "model=no_such_member", f"run_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="no_such_member.*nor a member of the family"):
        run_finetune(config, progress=False)
