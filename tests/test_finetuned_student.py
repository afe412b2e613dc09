"""W2S with a finetuned strong student (``w2s.student: finetune``): the cell's ``ft_*``
numbers equal a direct recomputation, the ceiling is trained once per seed, the report
shows both students, and a featuriser strong model is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from molw2s.data.tasks import load_task
from molw2s.errors import ConfigError
from molw2s.experiment import student as student_module
from molw2s.experiment.config import ExperimentConfig
from molw2s.experiment.runner import run_experiment
from molw2s.finetuning.holdout import validation_cut
from molw2s.finetuning.trainer import LabelledSmiles, finetune_regressor
from molw2s.w2s.protocol import fit_weak_model

FINETUNE = {"epochs": 2, "batch_size": 16, "lr": 1e-3, "patience": None, "device": "cpu"}


@pytest.fixture(scope="module")
def setup(logp_task_with_checkpoint):
    csv, model = logp_task_with_checkpoint
    return model, csv


def _config(model, csv, run_dir, **extra) -> ExperimentConfig:
    data = {
        "name": "student",
        "run_dir": str(run_dir),
        "strong": f"bert:{model}",
        "weak": ["maccs", "ecfp2-256", "ecfp4-512"],
        "tasks": [{"name": str(csv), "label_col": "logp"}],
        "splits": {"method": "random", "seeds": [0, 1], "min_weak": 10, "min_strong": 10, "min_test": 10},
        "w2s": {"student": "finetune", "finetune": FINETUNE},
        "evaluation": {"n_boot": 50},
        **extra,
    }
    return ExperimentConfig.model_validate(data)


def test_validation_cut_is_a_seeded_partition_of_d_s():
    strong = np.arange(10, 60)
    fit, valid = validation_cut(strong, 0.1, 3)
    assert len(valid) == 5 and np.array_equal(np.sort(np.concatenate([fit, valid])), strong)
    assert np.array_equal(validation_cut(strong, 0.1, 3)[1], valid)
    assert not np.array_equal(validation_cut(strong, 0.1, 4)[1], valid)
    assert len(validation_cut(np.arange(3), 0.01, 0)[1]) == 1


def test_finetuned_student_cells_match_a_direct_recomputation(setup, tmp_path, monkeypatch):
    model, csv = setup
    config = _config(model, csv, tmp_path / "run")
    calls = {"n": 0}
    real = student_module.finetuned_ceiling

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(student_module, "finetuned_ceiling", counted)
    results = run_experiment(config, progress=False)
    assert calls["n"] == 2  # one ceiling per seed, shared by the three weak models
    cells = pd.read_csv(tmp_path / "run" / "report" / "cells.csv")
    assert len(cells) == 6 and cells[["ft_err_w2s", "ft_err_sc", "ft_predgap"]].notna().all().all()
    report = (tmp_path / "run" / "report" / "report.md").read_text()
    assert "Linear and finetuned strong students" in report
    (entry,) = results["tasks"].values()
    assert [s["student"] for s in entry["students"]] == ["linear", "finetuned"]

    # recompute one cell from scratch: weak head on D_w, student finetuned on its labels
    from molw2s.encoders.embed import embed_task
    from molw2s.experiment.cell import task_cell_splits

    task = load_task(str(csv), label_col="logp")
    split = task_cell_splits(task, config)[1]
    H_w = embed_task("ecfp2-256", task)
    f_w = fit_weak_model(H_w, task.y, split.weak, config.w2s.weak)
    weak_labels = dict(zip(split.strong.tolist(), f_w.predict(H_w[split.strong]), strict=True))
    fit, valid = validation_cut(split.strong, config.w2s.student_valid_frac, split.seed)
    smiles = task.smiles
    student = finetune_regressor(
        model,
        LabelledSmiles.of([smiles[i] for i in fit], [weak_labels[i] for i in fit.tolist()]),
        LabelledSmiles.of([smiles[i] for i in valid], [weak_labels[i] for i in valid.tolist()]),
        config.w2s.finetune,
        seed=split.seed,
    )
    expected = float(np.mean((student.predict([smiles[i] for i in split.test]) - task.y[split.test]) ** 2))
    row = cells[(cells.weak == "ecfp2-256") & (cells.seed == split.seed)].iloc[0]
    assert row.ft_err_w2s == pytest.approx(expected, rel=1e-9)


def test_a_featuriser_strong_model_cannot_be_finetuned(setup, tmp_path):
    model, csv = setup
    config = _config(model, csv, tmp_path, strong="rdkit2d")
    with pytest.raises(ConfigError, match="featuriser"):
        run_experiment(config, progress=False)
