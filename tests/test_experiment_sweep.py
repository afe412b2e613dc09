"""The experiment sweep and evaluation on the synthetic family, where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from molw2s.errors import ConfigError
from molw2s.experiment.cell import CellSplit
from molw2s.experiment.config import ExperimentConfig
from molw2s.experiment.evaluate import evaluate
from molw2s.experiment.sweep import sweep_task
from molw2s.io import read_json_checked, write_json_checked
from molw2s.theory.synthetic import make_family


def _setup(tmp_path, n_seeds=2, n_weak=5):
    fam = make_family(1000, r=5, tail_dim=300, angles=np.linspace(0, 1.4, n_weak), tail_var=10.0, seed=1)
    reps = {"strong": fam.strong(), **{f"w{i}": fam.weak(i) for i in range(len(fam.angles))}}
    config = ExperimentConfig(
        name="synthetic",
        strong="strong",
        weak=[f"w{i}" for i in range(len(fam.angles))],
        tasks=["synth"],
        w2s={"head": {"beta": 0.01, "scale": "none"}},
        predictor={"primary": {"rule": "fixed", "k_w": 5, "k_s": 5}, "sensitivity": [{"rule": "flat_tail"}]},
        evaluation={"n_boot": 200},
    )
    rng = np.random.default_rng(0)
    splits = []
    for seed in range(n_seeds):
        perm = rng.permutation(fam.n)
        splits.append(CellSplit(seed, np.sort(perm[:300]), np.sort(perm[300:700]), np.sort(perm[700:])))
    return fam, reps, config, splits


def test_sweep_ranks_synthetic_family_and_caches_cells(tmp_path):
    fam, reps, config, splits = _setup(tmp_path)
    rows = sweep_task("synth", fam.y, reps, splits, config, tmp_path / "cells", progress=False)
    assert len(rows) == 2 * 5
    by_weak = {w: np.mean([r["M"] for r in rows if r["weak"] == w]) for w in config.weak}
    ms = [by_weak[f"w{i}"] for i in range(5)]
    assert ms == sorted(ms) and ms[0] < 0.2 and ms[-1] > 0.8  # M rises with the angle
    assert set(rows[0]["sensitivity"]) == {"fixed(k_w=5,k_s=5)", "flat_tail(c=3)"}

    cached = sorted(p.name for p in (tmp_path / "cells").iterdir())
    assert len(cached) == 10
    # a rerun reads every cell back instead of recomputing it
    altered = read_json_checked(tmp_path / "cells" / cached[0])
    write_json_checked(tmp_path / "cells" / cached[0], {**altered, "M": -1.0})
    again = sweep_task("synth", fam.y, reps, splits, config, tmp_path / "cells", progress=False)
    assert sum(r["M"] == -1.0 for r in again) == 1


def test_cells_from_worker_processes_equal_cells_from_this_process(tmp_path, monkeypatch):
    """Two forked workers (their own operator caches) give every number of the in-process
    sweep exactly, with a third of the cells already on disk; SGD heads stay in this process."""
    import json

    import molw2s.experiment.cell_workers as cell_workers

    fam, reps, config, splits = _setup(tmp_path, n_seeds=3)
    serial = sweep_task("synth", fam.y, reps, splits, config.model_copy(update={"sweep_jobs": 1}), tmp_path / "a")
    monkeypatch.setattr(cell_workers, "PARALLEL_CELLS_FROM", 2)
    pools = []
    real_pool = cell_workers.ProcessPoolExecutor
    monkeypatch.setattr(cell_workers, "ProcessPoolExecutor", lambda **kw: pools.append(kw) or real_pool(**kw))
    two = config.model_copy(update={"sweep_jobs": 2})
    sweep_task("synth", fam.y, reps, splits[:1], two, tmp_path / "b", progress=False)  # 5 of 15 cells first
    parallel = sweep_task("synth", fam.y, reps, splits, two, tmp_path / "b", progress=False)
    assert [kw["max_workers"] for kw in pools] == [2, 2]
    assert json.dumps(parallel, sort_keys=True) == json.dumps(serial, sort_keys=True)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(p.name for p in (tmp_path / "a").iterdir())
    sgd = two.model_copy(deep=True)
    sgd.w2s.head.solver = "sgd"
    assert cell_workers.sweep_jobs(two) == 2 and cell_workers.sweep_jobs(config) >= 1
    sweep_task("synth", fam.y, reps, splits[:1], sgd, tmp_path / "c", progress=False)
    assert len(pools) == 2  # no new pool: SGD heads train with torch threads, in this process


def test_changed_settings_change_the_cell_key(tmp_path):
    fam, reps, config, splits = _setup(tmp_path, n_seeds=1)
    sweep_task("synth", fam.y, reps, splits, config, tmp_path / "cells", progress=False)
    config.w2s.head.beta = 0.02
    sweep_task("synth", fam.y, reps, splits, config, tmp_path / "cells", progress=False)
    assert len(list((tmp_path / "cells").iterdir())) == 10


def test_evaluation_report_on_synthetic_family(tmp_path):
    """Eight weak models rotating away from the strong one: the first is the strong model's
    signal (not weaker than the ceiling: left out), M ranks the other seven perfectly."""
    fam, reps, config, splits = _setup(tmp_path, n_weak=8)
    config.evaluation.min_sources = 5
    rows = sweep_task("synth", fam.y, reps, splits, config, tmp_path / "cells", progress=False)
    results = evaluate(rows, config, tmp_path / "report")
    task = results["tasks"]["synth"]
    assert task["regime"]["status"] == "partial" and task["regime"]["not_weaker"] == ["w0"]
    rho = {(c["predictor"], c["measured"]): c for c in task["correlations"]}
    head = rho[("M", "err_w2s")]
    assert head["value"] == pytest.approx(1.0) and head["n_sources"] == 7
    assert head["p_value"] == pytest.approx(2 / 5040) and head["p_exact"]  # 7! orderings, two-sided
    assert head["verdict"].startswith("supports")
    assert rho[("M", "predgap")]["value"] > 0.9
    assert task["predgap_check_spearman"] > 0.9
    assert (
        "Verdict: supports" in task["interpretation"]
        and "not weaker than the ceiling by 10%: w0" in task["interpretation"]
    )
    regret = {r["criterion"]: r for r in task["selection_regret"]}
    assert regret["M"]["mean regret (RMSE)"] == pytest.approx(0.0)
    for name in (
        "report.md",
        "report.html",
        "results.json",
        "cells.csv",
        "correlations.csv",
        "synth_weak_models.csv",
        "synth_selection_regret.csv",
    ):
        assert (tmp_path / "report" / name).is_file(), name
    md = (tmp_path / "report" / "report.md").read_text()
    assert "figures/synth_m_vs_err_w2s.png" in md and "Dependence on the rule for k" in md
    for figure in ("burns", "m_vs_err_w2s", "pgr", "predgap_check", "scree"):
        assert (tmp_path / "report" / "figures" / f"synth_{figure}.svg").is_file(), figure


def test_config_rejects_strong_listed_as_weak():
    with pytest.raises(ValidationError, match="also listed as weak"):
        ExperimentConfig(name="x", strong="a", weak=["a", "b"], tasks=["t"])
    with pytest.raises(ValidationError, match="unknown"):
        ExperimentConfig(name="x", strong="a", weak=["b", "c"], tasks=["t"], unknown=1)
    assert ConfigError  # the loader wraps these into ConfigError (tested in test_foundation)


@pytest.mark.parametrize("new", ["cka", "spectrum_w"])
def test_a_cached_cell_without_a_new_key_is_recomputed_not_a_key_error(tmp_path, caplog, new):
    """Adding a predictor baseline or a row key (a key of every row) needs no version bump:
    a cell file written without it is stale, recomputed, and the log names the file."""
    fam, reps, config, splits = _setup(tmp_path, n_seeds=1)
    sweep_task("synth", fam.y, reps, splits, config, tmp_path / "cells", progress=False)
    path = sorted((tmp_path / "cells").iterdir())[0]
    old = {k: v for k, v in read_json_checked(path).items() if k != new}  # as before the key existed
    write_json_checked(path, {**old, "M": -1.0})
    with caplog.at_level("WARNING"):
        rows = sweep_task("synth", fam.y, reps, splits, config, tmp_path / "cells", progress=False)
    assert all(new in r and r["M"] != -1.0 for r in rows)
    assert f"{path} is stale (written without {new})" in caplog.text
    assert new in read_json_checked(path)
    evaluate(rows, config, tmp_path / "report")  # reads every predictor column


def test_students_registry_covers_the_config_literal():
    from typing import get_args

    from molw2s.experiment.config import W2SSettings
    from molw2s.experiment.students import STUDENTS

    assert set(STUDENTS) == set(get_args(W2SSettings.model_fields["student"].annotation))
