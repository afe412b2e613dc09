"""Pretraining-seed replicates: a family with ``seeds`` trains every member once per seed,
and ``molw2s run`` runs the experiment once per replicate, rows carrying ``replicate``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file
from typer.testing import CliRunner

import molw2s.experiment.cell_workers as cell_workers
from molw2s.cli import app
from molw2s.experiment.config import load_experiment_config
from molw2s.experiment.runner import resolve_encoders, run_experiment
from molw2s.pretraining.config import FamilyConfig
from molw2s.pretraining.family import collect_results, family_models, member_config_hash, pretrain_family

FAMILY = {
    "name": "tiny_seeds",
    "strong": "big",
    "data": {"corpus": {"name": "nci5k", "n": 120}, "val_fraction": 0.2, "descriptor_jobs": 1},
    "train": {"batch_size": 8, "warmup_steps": 1, "checkpoint_every": 10, "eval_every": 10, "num_threads": 1},
    "seeds": [0, 1],
    "members": [
        {
            "name": "small",
            "model": {"num_layers": 1, "hidden_size": 8, "num_heads": 2, "intermediate_size": 16},
            "steps": 4,
            "snapshots": [2],
        },
        {
            "name": "big",
            "model": {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32},
            "steps": 4,
        },
    ],
}


def _family(**changes: object) -> FamilyConfig:
    return FamilyConfig.model_validate({**FAMILY, **changes})


def test_one_seed_keeps_todays_paths_and_hashes() -> None:
    single = _family(seeds=[])
    replicated = _family(seeds=[0, 3])
    assert single.replicates() == [None] and replicated.replicates() == [0, 3]
    root = Path("models")
    assert family_models(single, root) == family_models(replicated, root, 0)  # train.seed: today's layout
    assert family_models(replicated, root, 3)["small@2"] == root / "seed=3" / "small" / "snapshots" / "step-00000002"
    member = single.member("big")
    assert member_config_hash(single, member, "data") == member_config_hash(replicated, member, "data", 0)
    assert member_config_hash(replicated, member, "data", 3) != member_config_hash(replicated, member, "data", 0)
    assert replicated.member_train(member, 3).seed == 3 and replicated.member_train(member).seed == 0


def test_seeds_must_be_unique_and_not_fight_a_member_seed() -> None:
    with pytest.raises(ValueError, match="seeds must be unique"):
        _family(seeds=[1, 1])
    members = [{**FAMILY["members"][0], "train": {"seed": 5}}, FAMILY["members"][1]]
    with pytest.raises(ValueError, match="train.seed cannot be overridden"):
        _family(members=members)
    assert _family(seeds=[], members=members).member_train(_family(seeds=[], members=members).member("small")).seed == 5


@pytest.fixture()
def experiment_yaml(tmp_path: Path) -> Path:
    (tmp_path / "family.yaml").write_text(yaml.safe_dump(FAMILY))
    config = {
        "name": "tiny_replicates",
        "family": "family.yaml",
        "run_dir": str(tmp_path / "run"),
        "strong": "big",
        "weak": ["small@2", "maccs"],
        "tasks": ["nci_tpsa"],
        "splits": {"method": "random", "seeds": [0]},
        "evaluation": {"n_boot": 20},
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_once_per_replicate_then_resume(experiment_yaml: Path, tmp_path: Path, monkeypatch) -> None:
    config = load_experiment_config(experiment_yaml)
    models = resolve_encoders(config)
    replicates = models.replicates()
    assert [r.seed for r in replicates] == [0, 1]
    assert replicates[1].refs["small@2"].path == tmp_path / "run/models/seed=1/small/snapshots/step-00000002"
    assert replicates[0].refs["maccs"] == replicates[1].refs["maccs"]  # featurisers are shared

    run_experiment(config, progress=False)
    models_dir = tmp_path / "run" / "models"
    first = load_file(str(models_dir / "big" / "final" / "model.safetensors"))
    second = load_file(str(models_dir / "seed=1" / "big" / "final" / "model.safetensors"))
    assert first.keys() == second.keys() and any((first[k] != second[k]).any() for k in first)  # another init
    table = collect_results(FamilyConfig.model_validate(FAMILY), models_dir)
    assert [(r.name, r.seed, r.status) for r in table.rows if r.name == "big"] == [
        ("big", 0, "finished earlier"),
        ("big", 1, "finished earlier"),
    ]
    # `molw2s pretrain` finds both replicates finished and prints them with their seed
    args = ["pretrain", str(tmp_path / "family.yaml"), "--run-dir", str(models_dir), "--no-progress"]
    printed = CliRunner().invoke(app, [*args, "--tracking", "none"])
    assert printed.exit_code == 0, printed.output
    assert "┃ seed ┃" in printed.output and printed.output.count("finished earlier") == 4
    # each replicate's cells in its own directory; rows keyed by (replicate, weak) with plain names
    cells_dir = tmp_path / "run" / "cells"
    assert len(list(cells_dir.glob("*.json"))) == 2 and len(list((cells_dir / "seed=1").glob("*.json"))) == 2
    cells = pd.read_csv(tmp_path / "run" / "report" / "cells.csv")
    assert sorted(zip(cells.replicate, cells.weak, strict=True)) == [
        (0, "maccs"),
        (0, "small@2"),
        (1, "maccs"),
        (1, "small@2"),
    ]
    m = cells.set_index(["replicate", "weak"])["M"]
    assert m[0, "small@2"] != m[1, "small@2"]

    computed = {"n": 0}
    real_run_cell = cell_workers.run_cell

    def counted(*args, **kwargs):
        computed["n"] += 1
        return real_run_cell(*args, **kwargs)

    monkeypatch.setattr(cell_workers, "run_cell", counted)
    run_experiment(config, progress=False)
    assert computed["n"] == 0  # every replicate's cells and models are reused


def test_a_replicate_is_the_family_trained_under_its_seed_also_in_workers(tmp_path: Path) -> None:
    """The seed-1 replicate, trained in a worker process beside seed 0, has the weights of
    the family trained alone with ``train.seed=1``."""
    small = {**FAMILY["members"][0], "snapshots": []}
    replicated = _family(members=[small], strong="small", parallel_members=2)
    alone = _family(members=[small], strong="small", seeds=[], train={**FAMILY["train"], "seed": 1})
    result = pretrain_family(replicated, tmp_path / "replicated", progress=False)
    assert [(r.seed, r.status) for r in result.rows if r.role == "strong"] == [(0, "trained"), (1, "trained")]
    pretrain_family(alone, tmp_path / "alone", progress=False)
    got = load_file(str(family_models(replicated, tmp_path / "replicated", 1)["small"] / "model.safetensors"))
    want = load_file(str(family_models(alone, tmp_path / "alone")["small"] / "model.safetensors"))
    assert got.keys() == want.keys() and all((got[k] == want[k]).all() for k in got)
