"""Model kinds of issue 26: precomputed tables, composites, molfeat calculators and chemprop
encoders, each equal to a direct computation, content-hashed, and usable as weak and strong
model in ``molw2s run``. Nothing downloads; molfeat / chemprop tests skip without the extra."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_experiment_run import FAMILY

from molw2s.chem.smiles import canonicalize
from molw2s.data.tasks import load_task
from molw2s.encoders.composite import concat_blocks
from molw2s.encoders.embed import compute_task_embedding, embed_task, parse_encoder_spec
from molw2s.encoders.refs import parse_model_ref
from molw2s.errors import ConfigError, DataError
from molw2s.experiment.config import load_experiment_config
from molw2s.experiment.models import resolve_models
from molw2s.experiment.runner import run_experiment

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SMILES = ["CCO", "c1ccccc1O", "CC(=O)N", "CCCl", "OC(=O)c1ccccc1"]
HAS_MOLFEAT = importlib.util.find_spec("molfeat") is not None
HAS_CHEMPROP = importlib.util.find_spec("chemprop") is not None
needs_molfeat = pytest.mark.skipif(not HAS_MOLFEAT, reason="molfeat not installed: pip install 'molw2s[molfeat]'")
needs_chemprop = pytest.mark.skipif(not HAS_CHEMPROP, reason="chemprop not installed: pip install 'molw2s[chemprop]'")


def _features(n: int, d: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def _write_csv(path: Path, smiles: list[str], X: np.ndarray, column: str = "smiles") -> Path:
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    frame.insert(0, column, smiles)
    frame.to_csv(path, index=False)
    return path


# --- table: ---------------------------------------------------------------------------


def test_table_rows_are_looked_up_by_canonical_smiles_in_every_format(tmp_path):
    X = _features(len(SMILES))
    spelled = ["OCC", "Oc1ccccc1", "NC(C)=O", "ClCC", "O=C(O)c1ccccc1"]  # other spellings, same molecules
    csv = _write_csv(tmp_path / "t.csv", spelled, X, column="mol")
    np.savez(tmp_path / "t.npz", smiles=np.array(spelled), emb=X)
    frame = pd.read_csv(csv)
    order = [2, 0, 4, 1, 3]
    expected = X[order].astype(np.float32)
    asked = [SMILES[i] for i in order]
    encoders = [parse_encoder_spec(f"table:{csv}#mol"), parse_encoder_spec(f"table:{tmp_path / 't.npz'}#emb")]
    if importlib.util.find_spec("pyarrow") is not None:
        frame.to_parquet(tmp_path / "t.parquet")
        encoders.append(parse_encoder_spec(f"table:{tmp_path / 't.parquet'}#mol"))
    for encoder in encoders:
        np.testing.assert_array_equal(encoder.encode(asked), expected)
    assert parse_model_ref(f"table:{tmp_path / 't.npz'}").spec.endswith("t.npz#X")  # the default array name


def test_table_missing_molecules_bad_files_and_specs_are_clear_errors(tmp_path):
    csv = _write_csv(tmp_path / "t.csv", SMILES[:2], _features(2))
    encoder = parse_encoder_spec(f"table:{csv}")
    with pytest.raises(DataError, match=r"3 of 4 molecules are not in the table .*'CC\(=O\)N', 'CCCl', 'CCCCC'"):
        encoder.encode(["CCO", "CC(=O)N", "CCCl", "CCCCC"])
    with pytest.raises(ConfigError, match="not found"):
        parse_model_ref(f"table:{tmp_path / 'nope.csv'}")
    with pytest.raises(ConfigError, match=r"\.csv, \.parquet or \.npz"):
        parse_model_ref(f"table:{tmp_path / 't.txt'}")
    with pytest.raises(DataError, match="no SMILES column 'mol'"):
        parse_encoder_spec(f"table:{csv}#mol").encode(["CCO"])
    np.savez(tmp_path / "obj.npz", smiles=np.array(["CCO"], dtype=object), X=np.ones((1, 2)))
    with pytest.raises(DataError, match="never unpickles"):
        parse_encoder_spec(f"table:{tmp_path / 'obj.npz'}").encode(["CCO"])
    pd.DataFrame({"smiles": ["CCO", "OCC"], "f": [1.0, 2.0]}).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(DataError, match="one molecule .* with different features"):
        parse_encoder_spec(f"table:{tmp_path / 'dup.csv'}").encode(["CCO"])


def _task_table(path: Path, d: int = 6, seed: int = 0) -> Path:
    """A table of every molecule of nci_tpsa (once each: the task repeats some)."""
    molecules = sorted({canonicalize(s) or s for s in load_task("nci_tpsa").smiles})
    return _write_csv(path, molecules, _features(len(molecules), d, seed))


def test_table_cache_key_follows_the_file_content(tmp_path):
    task = load_task("nci_tpsa")
    path = _task_table(tmp_path / "t.csv")
    encoder = parse_encoder_spec(f"table:{path}")
    first = compute_task_embedding(encoder, task)
    assert not first.from_cache and compute_task_embedding(encoder, task).from_cache
    _task_table(path, seed=1)
    second = compute_task_embedding(encoder, task)
    assert not second.from_cache and second.path != first.path
    assert not np.allclose(second.values, first.values)


# --- concat: --------------------------------------------------------------------------


def test_concat_scales_each_block_to_its_weight_of_the_total_variance():
    encoder = parse_encoder_spec("concat:maccs*2+ecfp2-256")
    X = encoder.encode(SMILES)
    maccs, ecfp = parse_encoder_spec("maccs").encode(SMILES), parse_encoder_spec("ecfp2-256").encode(SMILES)
    np.testing.assert_allclose(X, concat_blocks([maccs, ecfp], [2.0, 1.0]), rtol=1e-6)
    assert X.shape == (len(SMILES), 167 + 256)
    np.testing.assert_allclose([X[:, :167].var(0).sum(), X[:, 167:].var(0).sum()], [2.0, 1.0], rtol=1e-5)
    centred = maccs - maccs.mean(0)
    np.testing.assert_allclose(X[:, :167], centred * np.sqrt(2.0 / centred.var(0).sum()), rtol=1e-5, atol=1e-6)
    identity = encoder.identity()
    assert [p["weight"] for p in identity["parts"]] == [2.0, 1.0]
    assert identity["parts"][0]["identity"] == parse_encoder_spec("maccs").identity()


def test_concat_parts_share_the_embedding_cache_with_the_parts_alone(monkeypatch):
    from molw2s.encoders.fingerprints import MACCSEncoder

    task = load_task("nci_tpsa")
    maccs = embed_task("maccs", task)

    def not_again(self, smiles, *, progress=False):
        raise AssertionError("maccs was computed again instead of read from the cache")

    monkeypatch.setattr(MACCSEncoder, "encode", not_again)
    X = embed_task("concat:maccs+ecfp2-256", task)
    np.testing.assert_allclose(X[:, :167], concat_blocks([maccs], [1.0]), rtol=1e-6)


def test_concat_bad_specs_are_clear_errors():
    for spec, message in [
        ("concat:maccs", "at least two"),
        ("concat:maccs+", "at least two"),
        ("concat:maccs*0+ecfp4-1024", "must be positive"),
        ("concat:maccs+concat:ecfp4", "cannot be a concat"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_model_ref(spec)
    with pytest.raises(ConfigError, match="unknown encoder 'morgan'"):
        parse_model_ref("concat:maccs+morgan")


def test_concat_parts_may_be_family_members(tmp_path):
    config = load_experiment_config(
        CONFIGS / "quickstart.yaml",
        [f"run_dir={tmp_path / 'run'}", "strong=concat:strong*2+rdkit2d", "weak=[maccs,weak_s]"],
    )
    models = resolve_models([config.strong, *config.weak], config)
    strong = tmp_path / "run" / "models" / "strong" / "final"
    assert models.refs[config.strong].spec == f"concat:bert:{strong}*2+rdkit2d"
    assert models.members == ("strong", "weak_s")  # so pretraining trains the concat part too
    with pytest.raises(ConfigError, match="'nothing' is neither a model spec nor a member"):
        resolve_models(["concat:strong+nothing"], config)


# --- molfeat: -------------------------------------------------------------------------


@needs_molfeat
def test_molfeat_equals_a_direct_calculator_in_worker_processes():
    from molfeat.calc import get_calculator

    encoder = parse_encoder_spec("molfeat:fcfp?length=128&radius=1")
    assert encoder.name == "molfeat:fcfp?length=128&radius=1"
    direct = np.array([get_calculator("fcfp", length=128, radius=1)(s) for s in SMILES], dtype=np.float32)
    np.testing.assert_array_equal(encoder.encode(SMILES), direct)
    parallel = type(encoder)("fcfp", (("length", 128), ("radius", 1)), n_jobs=2)
    many = SMILES * 300  # above the size from which workers are used
    np.testing.assert_array_equal(parallel.encode(many), np.tile(direct, (300, 1)))
    scaffold = parse_encoder_spec("molfeat:scaffoldkeys")
    np.testing.assert_allclose(scaffold.encode(SMILES[:2]), [get_calculator("scaffoldkeys")(s) for s in SMILES[:2]])


@needs_molfeat
def test_molfeat_errors_name_the_spec_row_and_install_command(monkeypatch):
    with pytest.raises(ConfigError, match="molfeat refused it"):
        parse_model_ref("molfeat:nonsense")
    with pytest.raises(ConfigError, match="bad parameter 'length'"):
        parse_model_ref("molfeat:fcfp?length")
    with pytest.raises(DataError, match=r"row 1.*invalid SMILES 'C1CC'"):
        parse_encoder_spec("molfeat:maccs").encode(["CCO", "C1CC"])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install 'molw2s\[molfeat\]'"):
        parse_model_ref("molfeat:maccs")


# --- chemprop: ------------------------------------------------------------------------


def _train_chemprop(path: Path, seed: int = 0, steps: int = 3) -> Path:
    """A tiny chemprop v2 MPNN trained for a few steps on a toy target, saved as chemprop does."""
    import torch
    from chemprop import models, nn
    from chemprop.data import BatchMolGraph
    from chemprop.featurizers import SimpleMoleculeMolGraphFeaturizer
    from chemprop.models.utils import save_model
    from rdkit import Chem

    torch.manual_seed(seed)
    model = models.MPNN(
        nn.BondMessagePassing(d_h=16, depth=2),
        nn.MeanAggregation(),
        nn.RegressionFFN(input_dim=16, hidden_dim=8),
        batch_norm=True,
    )
    featurizer = SimpleMoleculeMolGraphFeaturizer()
    batch = BatchMolGraph([featurizer(Chem.MolFromSmiles(s)) for s in SMILES])
    target = torch.tensor([[float(len(s))] for s in SMILES])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch), target)
        loss.backward()
        optimiser.step()
    save_model(path, model)
    return path


def _chemprop_fingerprint(path: Path, smiles: list[str]) -> np.ndarray:
    import torch
    from chemprop.data import BatchMolGraph
    from chemprop.featurizers import SimpleMoleculeMolGraphFeaturizer
    from chemprop.models.utils import load_model
    from rdkit import Chem

    model = load_model(path).eval()  # chemprop's own (unpickling) loader, on our own file
    featurizer = SimpleMoleculeMolGraphFeaturizer()
    with torch.no_grad():
        return model.fingerprint(BatchMolGraph([featurizer(Chem.MolFromSmiles(s)) for s in smiles])).numpy()


@needs_chemprop
def test_chemprop_fingerprints_equal_chemprops_own_forward_pass(tmp_path):
    path = _train_chemprop(tmp_path / "model.pt")
    encoder = parse_encoder_spec(f"chemprop:{path}", batch_size=2)
    np.testing.assert_allclose(encoder.encode(SMILES), _chemprop_fingerprint(path, SMILES), rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match=r"row 1.*invalid SMILES 'C1CC'"):
        encoder.encode(["CCO", "C1CC"])


@needs_chemprop
def test_chemprop_message_passing_file_as_chemeleon_ships_it(tmp_path):
    import torch
    from chemprop import nn

    torch.manual_seed(0)
    mp = nn.BondMessagePassing(d_h=12, depth=2)
    torch.save({"hyper_parameters": {"d_h": 12, "depth": 2}, "state_dict": mp.state_dict()}, tmp_path / "mp.pt")
    X = parse_encoder_spec(f"chemprop:{tmp_path / 'mp.pt'}").encode(SMILES)
    from chemprop.data import BatchMolGraph
    from chemprop.featurizers import SimpleMoleculeMolGraphFeaturizer
    from rdkit import Chem

    featurizer = SimpleMoleculeMolGraphFeaturizer()
    batch = BatchMolGraph([featurizer(Chem.MolFromSmiles(s)) for s in SMILES])
    with torch.no_grad():
        direct = nn.MeanAggregation()(mp.eval()(batch), batch.batch).numpy()
    np.testing.assert_allclose(X, direct, rtol=1e-5, atol=1e-6)


@needs_chemprop
def test_chemprop_cache_key_follows_the_file_and_unsafe_files_are_refused(tmp_path):
    import torch

    task = load_task("nci_tpsa")
    path = _train_chemprop(tmp_path / "model.pt")
    encoder = parse_encoder_spec(f"chemprop:{path}")
    first = compute_task_embedding(encoder, task)
    assert compute_task_embedding(encoder, task).from_cache
    _train_chemprop(path, steps=5)
    second = compute_task_embedding(encoder, task)
    assert not second.from_cache and second.path != first.path
    torch.save({"hyper_parameters": {}, "state_dict": {}, "x": Path("evil")}, tmp_path / "foreign.pt")
    with pytest.raises(DataError, match=r"globals other than chemprop classes \(\['pathlib.PosixPath'\]\)"):
        parse_encoder_spec(f"chemprop:{tmp_path / 'foreign.pt'}").encode(SMILES)
    with pytest.raises(ConfigError, match="chemprop model file .* not found"):
        parse_model_ref(f"chemprop:{tmp_path / 'missing.pt'}")
    from chemprop.featurizers import SimpleMoleculeMolGraphFeaturizer
    from chemprop.utils import make_mol

    torch.save({"hyper_parameters": {}, "state_dict": {}, "x": make_mol}, tmp_path / "function.pt")
    with pytest.raises(DataError, match=r"globals other than chemprop classes \(\['chemprop.utils.utils.make_mol'\]\)"):
        parse_encoder_spec(f"chemprop:{tmp_path / 'function.pt'}").encode(SMILES)
    not_a_module = {"cls": SimpleMoleculeMolGraphFeaturizer}
    hparams = {"message_passing": not_a_module, "agg": not_a_module, "predictor": {}}
    torch.save({"hyper_parameters": hparams, "state_dict": {}}, tmp_path / "not_a_module.pt")
    with pytest.raises(DataError, match="not a chemprop module class"):
        parse_encoder_spec(f"chemprop:{tmp_path / 'not_a_module.pt'}").encode(SMILES)


# --- every kind as weak and as strong in molw2s run -----------------------------------


def _kind_specs(tmp_path: Path) -> dict[str, str]:
    specs = {"table": f"table:{_task_table(tmp_path / 'table.csv', d=8)}", "concat": "concat:maccs+ecfp2-256*0.5"}
    if HAS_MOLFEAT:
        specs["molfeat"] = "molfeat:erg"
    if HAS_CHEMPROP:
        specs["chemprop"] = f"chemprop:{_train_chemprop(tmp_path / 'model.pt')}"
    return specs


def test_every_kind_runs_as_weak_and_as_strong(tmp_path):
    specs = _kind_specs(tmp_path)
    for kind, strong in specs.items():
        config = {
            "name": f"kinds_{kind}",
            "run_dir": str(tmp_path / kind),
            "strong": strong,
            "weak": [spec for other, spec in specs.items() if other != kind] + ["ecfp2-256"],
            "tasks": ["nci_tpsa"],
            "splits": {"method": "random", "seeds": [0]},
            "evaluation": {"n_boot": 20},
        }
        (tmp_path / f"{kind}.yaml").write_text(yaml.safe_dump(config))
        results = run_experiment(load_experiment_config(tmp_path / f"{kind}.yaml"), progress=False, tracking="none")
        rows = results["tasks"]["nci_tpsa"]["weak_models"]
        assert {r["weak"] for r in rows} == set(config["weak"])
        assert all(np.isfinite(r["err_w2s"]) for r in rows)
    assert embed_task(specs["table"], "nci_tpsa").shape[1] == 8


def test_the_new_kinds_work_in_molw2s_embed_and_the_sklearn_adapter(tmp_path):
    from typer.testing import CliRunner

    from molw2s.cli import app
    from molw2s.interop.sklearn import MolW2SFeaturizer

    table = _task_table(tmp_path / "t.csv", d=4)
    spec = f"concat:table:{table}+maccs*0.5"
    out = tmp_path / "x.npy"
    result = CliRunner().invoke(app, ["embed", "-e", spec, "-t", "nci_tpsa", "-o", str(out)])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(out), embed_task(spec, "nci_tpsa"))
    molecules = load_task("nci_tpsa").smiles[:20]
    X = MolW2SFeaturizer(f"table:{table}").fit(molecules).transform(molecules)
    np.testing.assert_array_equal(X, parse_encoder_spec(f"table:{table}").encode(molecules))


def test_a_concat_of_a_family_member_is_pretrained_and_run(tmp_path):
    (tmp_path / "family.yaml").write_text(yaml.safe_dump(FAMILY))  # the tiny family of test_experiment_run
    config = {
        "name": "concat_member",
        "family": "family.yaml",
        "run_dir": str(tmp_path / "run"),
        "strong": "concat:big+maccs",
        "weak": ["small", "ecfp2-256"],
        "tasks": ["nci_tpsa"],
        "splits": {"method": "random", "seeds": [0]},
        "evaluation": {"n_boot": 20},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    results = run_experiment(load_experiment_config(tmp_path / "run.yaml"), progress=False, tracking="none")
    assert (tmp_path / "run" / "models" / "big" / "final" / "model.safetensors").is_file()
    assert {r["weak"] for r in results["tasks"]["nci_tpsa"]["weak_models"]} == {"small", "ecfp2-256"}
