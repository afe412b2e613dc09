"""``molw2s run`` end to end with a tiny family: pretrain, embed, sweep, evaluate, resume."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

import molw2s.experiment.cell_workers as cell_workers
from molw2s.cli import app
from molw2s.errors import ConfigError
from molw2s.experiment.config import load_experiment_config
from molw2s.experiment.runner import model_plans, resolve_encoders, run_experiment

FAMILY = {
    "name": "tiny",
    "strong": "big",
    "data": {"corpus": {"name": "nci5k", "n": 150}, "val_fraction": 0.2, "descriptor_jobs": 1},
    "train": {"batch_size": 8, "warmup_steps": 2, "checkpoint_every": 10, "eval_every": 10, "num_threads": 1},
    "members": [
        {
            "name": "small",
            "model": {"num_layers": 1, "hidden_size": 8, "num_heads": 2, "intermediate_size": 16},
            "steps": 10,
            "snapshots": [5],
        },
        {
            "name": "big",
            "model": {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32},
            "steps": 15,
        },
    ],
}


@pytest.fixture()
def experiment_yaml(tmp_path):
    (tmp_path / "family.yaml").write_text(yaml.safe_dump(FAMILY))
    config = {
        "name": "tiny_run",
        "family": "family.yaml",
        "run_dir": str(tmp_path / "run"),
        "strong": "big",
        "weak": ["small@5", "small", "maccs"],
        "tasks": ["nci_tpsa"],
        "splits": {"method": "random", "seeds": [0, 1]},
        "evaluation": {"n_boot": 50},
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_end_to_end_then_resume_after_interrupt(experiment_yaml, tmp_path, monkeypatch):
    config = load_experiment_config(experiment_yaml)
    calls = {"n": 0}
    real_run_cell = cell_workers.run_cell

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the sweep
        return real_run_cell(*args, **kwargs)

    monkeypatch.setattr(cell_workers, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, progress=False)
    cells_dir = tmp_path / "run" / "cells"
    assert len(list(cells_dir.glob("*.json"))) == 3
    for member in ("small", "big"):
        assert (tmp_path / "run" / "models" / member / "final" / "model.safetensors").is_file()

    calls["n"] = -100  # no more interruptions; count how many cells are computed on resume
    results = run_experiment(config, progress=False)
    assert calls["n"] == -100 + 3  # only the 3 missing cells of 6 were computed
    task = results["tasks"]["nci_tpsa"]
    assert task["n_cells"] == 6
    assert {r["weak"] for r in task["weak_models"]} == {"small@5", "small", "maccs"}
    assert 0.0 <= min(r["M"] for r in task["weak_models"]) <= max(r["M"] for r in task["weak_models"]) <= 1.0
    report = (tmp_path / "run" / "report" / "report.md").read_text()
    assert "Task nci_tpsa" in report and "Spearman" in report
    cells = [json.loads(p.read_text()) for p in cells_dir.glob("*.json")]
    assert all(c["scale"] == "trace" and c["rule"] == "auto" for c in cells)
    assert all({c["rule_w"], c["rule_s"]} <= {"flat_tail", "full_rank"} for c in cells)
    assert all(
        0 < len(c["spectrum_s"]) <= 64 and c["spectrum_s"] == sorted(c["spectrum_s"], reverse=True) for c in cells
    )
    timings = json.loads((tmp_path / "run" / "timings.json").read_text())
    assert list(timings["seconds"]) == ["pretraining", "embedding", "sweep", "evaluation"]
    assert timings["total"] == pytest.approx(sum(timings["seconds"].values())) and timings["seconds"]["sweep"] > 0
    # one [UNK] line per vocabulary: the family's members share one (featurisers have none)
    data_report = (tmp_path / "run" / "data_report.txt").read_text()
    assert "nci_tpsa under the vocabulary of big, small@5, small: " in data_report
    assert "[UNK] tokens" in data_report and "maccs" not in data_report.split("vocabulary of")[1]


def test_unknown_model_name_fails_before_any_work(experiment_yaml, tmp_path):
    config = load_experiment_config(experiment_yaml, ["weak=[small,ecfp4-1024,not_a_model]"])
    with pytest.raises(ConfigError, match="not_a_model.*family members: .*small@5"):
        resolve_encoders(config)
    assert not (tmp_path / "run" / "models").exists()


def test_missing_task_or_too_small_split_fails_before_pretraining(experiment_yaml, tmp_path):
    """A GPU hour is not spent pretraining for a run whose task file is missing or whose
    split cannot be cut: both fail first, before any member trains."""
    from molw2s.errors import MolW2SError

    missing = load_experiment_config(experiment_yaml, [f"tasks=[{tmp_path / 'nope.csv'}]"])
    with pytest.raises(MolW2SError, match="nope"):
        run_experiment(missing, progress=False)
    too_small = load_experiment_config(experiment_yaml, ["splits.min_test=100000"])
    with pytest.raises(MolW2SError, match=r"splits.min_test = 100000"):
        run_experiment(too_small, progress=False)
    assert not (tmp_path / "run" / "models").exists()


def test_cli_run_reports_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstrong: maccs\nweak: [ecfp4-1024, ecfp2-512]\ntasks: [nci_logp]\nsplit: {}\n")
    result = CliRunner().invoke(app, ["run", str(bad)])
    assert result.exit_code != 0
    assert "unknown key 'split'" in str(result.exception) and "splits" in str(result.exception)


def test_user_csv_task_with_named_columns(tmp_path):
    from rdkit.Chem import Descriptors, MolFromSmiles

    smiles = [f"{'C' * k}{end}" for k in range(1, 21) for end in ("O", "N", "Cl")]  # 60 distinct molecules
    lines = ["mol,weight,other"] + [
        f"{s},{Descriptors.MolWt(MolFromSmiles(s)) + i * 0.01},x" for i, s in enumerate(smiles)
    ]
    lines.append("not_a_smiles,1.0,x")
    csv = tmp_path / "my_task.csv"
    csv.write_text("\n".join(lines) + "\n")
    config = load_experiment_config(
        _write(
            tmp_path / "csv.yaml",
            {
                "name": "csv_run",
                "run_dir": str(tmp_path / "run"),
                "strong": "ecfp4-512",
                "weak": ["maccs", "ecfp2-256"],
                "tasks": [{"name": str(csv), "smiles_col": "mol", "label_col": "weight"}],
                "splits": {"seeds": [0], "min_weak": 10, "min_strong": 10, "min_test": 5},  # a tiny task
                "evaluation": {"n_boot": 20},
            },
        )
    )
    results = run_experiment(config, progress=False)
    assert results["tasks"]["my_task"]["n_cells"] == 2
    report = (tmp_path / "run" / "data_report.txt").read_text()
    assert "not_a_smiles" in report and "1 " in report  # the invalid row is reported, not dropped silently
    rerun = CliRunner().invoke(app, ["run", str(tmp_path / "csv.yaml"), "--no-progress", "--tracking", "none"])
    assert rerun.exit_code == 0, rerun.output
    assert "time: pretraining 0 s, embedding" in rerun.output and "report:" in rerun.output


def _write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", ["quickstart", "moleculenet", "paper", "gpu"])
def test_shipped_configs_validate_and_name_real_models(name):
    from pathlib import Path

    config = load_experiment_config(Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml")
    specs = resolve_encoders(config).refs  # every weak / strong name is a family member or a featuriser
    assert len(config.weak) >= 8 and set(specs) == {config.strong, *config.weak}
    n_weak = len(model_plans(config, specs)) - 1 + len(config.expand.controlled.names())
    assert n_weak >= (24 if name == "moleculenet" else 8)  # issue 11: enough weak models to narrow intervals
    if name == "gpu":  # issue 9: BERT-base strong, >= 500k MOSES, >= 2 epochs, >= 12 weak models
        from molw2s.pretraining.config import load_family_config

        family = load_family_config(config.family)
        strong = family.member(config.strong)
        n_train = family.data.corpus.n - family.data.max_val
        assert family.data.corpus.name == "moses" and n_train >= 495_000 and len(config.weak) >= 12
        assert strong.model.hidden_size == 768 and strong.model.num_layers == 12
        assert strong.steps * family.train.batch_size >= 2 * n_train


def test_two_fresh_runs_give_identical_results_and_report_prints_them(experiment_yaml, tmp_path, monkeypatch):
    results = []
    for i in range(2):  # fresh run directory and fresh cache: pretraining, embeddings, cells all redone
        monkeypatch.setenv("MOLW2S_DATA_DIR", str(tmp_path / f"cache{i}"))
        config = load_experiment_config(experiment_yaml, [f"run_dir={tmp_path / f'fresh{i}'}"])
        results.append(run_experiment(config, progress=False))
    first, second = ({k: v for k, v in r.items() if k != "config"} for r in results)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)  # bit for bit (CPU), NaN too
    assert first["provenance"]["molw2s_version"]
    out = CliRunner().invoke(app, ["report", str(tmp_path / "fresh0"), "--markdown"])
    assert out.exit_code == 0, out.output
    rho = next(
        c
        for c in first["tasks"]["nci_tpsa"]["correlations"]
        if c["predictor"] == "M" and c["measured"] == "err_w2s" and c["method"] == "spearman"
    )
    status = first["tasks"]["nci_tpsa"]["regime"]["status"]
    assert f"| nci_tpsa | {status} | {rho['n_sources']} | {rho['value']:.2f} " in out.output
    assert "commit" in out.output and "logical cores" in out.output


def test_weak_family_expands_without_more_pretraining(experiment_yaml, tmp_path):
    overrides = [
        f"run_dir={tmp_path / 'expanded'}",
        "splits.seeds=[0]",
        "expand.layers=[0, -1]",  # -1 is the configured layer: not repeated
        "expand.poolings=[cls]",
        "expand.controlled={subspace_dims: [4], noise_levels: [1.0], mix_with: maccs, mix_weights: [0.5]}",
    ]
    results = run_experiment(load_experiment_config(experiment_yaml, overrides), progress=False)
    weak = {m["weak"] for m in results["tasks"]["nci_tpsa"]["weak_models"]}
    assert weak == {
        "small@5",
        "small",
        "maccs",
        "small@5|layer=0",
        "small|layer=0",
        "small@5|pooling=cls",
        "small|pooling=cls",
        "ctrl:subspace=4",
        "ctrl:noise=1",
        "ctrl:mix=maccs@0.5",
    }
    assert results["tasks"]["nci_tpsa"]["n_cells"] == 10
    models = tmp_path / "expanded" / "models"
    assert sorted(p.name for p in models.iterdir() if p.is_dir()) == ["big", "small"]  # nothing extra trained


def test_each_checkpoint_is_loaded_once_for_all_tasks_and_precision_reaches_it(experiment_yaml, tmp_path, monkeypatch):
    """Embedding is model-major: one load per transformer model whatever the number of tasks,
    and ``embedding.precision`` keys the embeddings (bf16 ones are cached apart)."""
    import molw2s.encoders.model_files as model_files
    from molw2s.encoders.transformer import TransformerEncoder

    loads, encoders = [], []
    real_load, real_encode = model_files.load_encoder, TransformerEncoder.encode
    monkeypatch.setattr(model_files, "load_encoder", lambda d: loads.append(d) or real_load(d))

    def recording(self, smiles, **kwargs):
        encoders.append(self)
        return real_encode(self, smiles, **kwargs)

    monkeypatch.setattr(TransformerEncoder, "encode", recording)
    from molw2s.data.tasks import load_task

    tpsa = load_task("nci_tpsa")
    subset = tmp_path / "nci_subset.csv"  # other molecules than nci_tpsa's, so both tasks are embedded
    subset.write_text("smiles,y\n" + "".join(f"{s},{y}\n" for s, y in zip(tpsa.smiles[:300], tpsa.y[:300])))
    overrides = [
        f"run_dir={tmp_path / 'bf16'}",
        "splits.seeds=[0]",
        f"tasks=[nci_tpsa, {{name: {subset}, smiles_col: smiles, label_col: y}}]",
        "embedding.precision=bfloat16",
    ]
    results = run_experiment(load_experiment_config(experiment_yaml, overrides), progress=False)
    assert set(results["tasks"]) == {"nci_tpsa", "nci_subset"}
    assert len(encoders) == 6  # 3 transformer models x 2 tasks
    assert len(loads) == 3  # big, small@5, small: one load each
    assert {e.precision for e in encoders} == {"bfloat16"}
