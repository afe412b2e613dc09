"""deepchem interop: our random and scaffold splits equal deepchem's splitters on ESOL,
FreeSolv and Lipop (the claim in docs/data.md), molw2s encoders as deepchem featurizers,
and MoleculeNet tasks through deepchem's loaders. No network: deepchem reads files the
tests write. In CI (``CI`` set) a missing deepchem fails the run instead of skipping."""

from __future__ import annotations

import gzip
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

if os.environ.get("CI"):
    import deepchem as dc  # CI installs molw2s[deepchem]: these tests must run there
else:
    dc = pytest.importorskip("deepchem")

from molw2s.data.splits import Split, random_split, scaffold_split, to_positions
from molw2s.data.tasks import load_task
from molw2s.encoders.embed import parse_encoder_spec
from molw2s.errors import ConfigError, DataError, DataNotFoundError
from molw2s.interop.deepchem import DEEPCHEM_LOADERS, EncoderFeaturizer, load_deepchem_task

TASKS = ("ESOL", "FreeSolv", "Lipop")
SMILES = ["CCO", "OC(=O)c1ccccc1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "C1CC1Br", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "N"]


@pytest.fixture(scope="module")
def file_smiles(moleculenet_dir: Path) -> dict[str, list[str]]:
    """The SMILES column of each task file, as deepchem reads it (one entry per file row)."""
    return {t: pd.read_csv(moleculenet_dir / f"{t}.csv.gz")["smiles"].tolist() for t in TASKS}


def _dataset(smiles: list[str]) -> dc.data.NumpyDataset:
    """A deepchem dataset whose ids are the SMILES (where ScaffoldSplitter reads them)."""
    return dc.data.NumpyDataset(X=np.zeros(len(smiles)), ids=np.array(smiles, dtype=object))


def _as_split(parts: tuple) -> Split:
    """deepchem's (train, valid, test) indices, each sorted (as molw2s stores them)."""
    return Split(*(np.sort(np.asarray(p, dtype=np.int64)) for p in parts))


def _assert_same(ours: Split, theirs: Split) -> None:
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(ours, part), getattr(theirs, part), err_msg=part)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(("seed", "frac"), [(0, (0.8, 0.1, 0.1)), (122, (0.8, 0.1, 0.1)), (7, (0.7, 0.2, 0.1))])
def test_random_split_equals_deepchem_random_splitter(file_smiles, task, seed, frac):
    smiles = file_smiles[task]
    theirs = dc.splits.RandomSplitter().split(_dataset(smiles), *frac, seed=seed)
    _assert_same(random_split(len(smiles), frac, seed=seed), _as_split(theirs))


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("frac", [(0.8, 0.1, 0.1), (0.6, 0.2, 0.2)])
def test_scaffold_split_equals_deepchem_scaffold_splitter(file_smiles, task, frac):
    smiles = file_smiles[task]
    theirs = dc.splits.ScaffoldSplitter().split(_dataset(smiles), *frac)
    _assert_same(scaffold_split(smiles, frac), _as_split(theirs))


@pytest.mark.parametrize("spec", ["ecfp4-2048", "maccs"])
def test_featurizer_rows_equal_the_encoder(spec):
    from rdkit import Chem

    featurizer = EncoderFeaturizer(spec)
    assert isinstance(featurizer, dc.feat.MolecularFeaturizer)
    canonical = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in SMILES]
    expected = parse_encoder_spec(spec).encode(canonical)
    features = featurizer.featurize(SMILES)
    assert features.dtype == np.float32 and features.shape == expected.shape
    np.testing.assert_array_equal(features, expected)
    np.testing.assert_array_equal(featurizer([Chem.MolFromSmiles(s) for s in SMILES]), expected)  # RDKit mols
    np.testing.assert_array_equal(featurizer.featurize("CCO"), expected[:1])
    assert featurizer.last_invalid == []


def test_featurizer_marks_invalid_rows_empty_and_logs_them(caplog):
    featurizer = EncoderFeaturizer(parse_encoder_spec("maccs"))
    with caplog.at_level(logging.WARNING, logger="molw2s.interop.deepchem"):
        features = featurizer.featurize(["CCO", "C1CC", "N", "xyz"])
    assert features.dtype == object and [f.shape for f in features] == [(167,), (0,), (167,), (0,)]
    assert [(i.row, i.smiles) for i in featurizer.last_invalid] == [(1, "C1CC"), (3, "xyz")]
    np.testing.assert_array_equal(np.stack([features[0], features[2]]), featurizer.featurize(["CCO", "N"]))
    assert "row 1: 'C1CC'" in caplog.text and "row 3: 'xyz'" in caplog.text
    assert featurizer.last_invalid == []
    with pytest.raises(DataError, match="C1CC"):
        featurizer._featurize("C1CC")


def test_checkpoint_featurizer_loads_the_model_once_per_call(tmp_path, make_tiny_checkpoint, monkeypatch):
    from rdkit import Chem

    from molw2s.encoders import model_files

    model = make_tiny_checkpoint(tmp_path / "model", SMILES)
    calls = []
    real_load = model_files.load_encoder
    monkeypatch.setattr(model_files, "load_encoder", lambda path: calls.append(path) or real_load(path))
    featurizer = EncoderFeaturizer(f"bert:{model}")
    features = featurizer.featurize(SMILES)
    assert len(calls) == 1 and features.shape == (len(SMILES), 16)
    canonical = [Chem.CanonSmiles(s) for s in SMILES]
    np.testing.assert_allclose(features, featurizer.encoder.encode(canonical), atol=1e-6)
    other = EncoderFeaturizer(parse_encoder_spec(f"bert:{model}", pooling="cls"))
    assert str(other) != str(featurizer)  # deepchem names its molnet cache folders by str(featurizer)


def test_featurizer_in_a_molnet_loader_and_a_deepchem_model(tmp_path):
    from sklearn.linear_model import Ridge

    rows = [*SMILES, "not a smiles", "CCCCO", "c1ccncc1", "CC(=O)Nc1ccc(O)cc1", "ClCCl"]
    pd.DataFrame(
        {"smiles": rows, "measured log solubility in mols per litre": np.arange(len(rows), dtype=float)}
    ).to_csv(tmp_path / "delaney-processed.csv", index=False)
    featurizer = EncoderFeaturizer("maccs")
    _, (train, valid, test), _ = dc.molnet.load_delaney(
        featurizer=featurizer, splitter="random", transformers=[], reload=False, data_dir=tmp_path, save_dir=tmp_path
    )
    assert train.X.shape[1] == 167 and len(train) + len(valid) + len(test) == len(rows) - 1  # invalid row dropped
    assert "not a smiles" not in set(train.ids) | set(valid.ids) | set(test.ids)
    model = dc.models.SklearnModel(Ridge())
    model.fit(train)
    assert model.predict(test).shape[0] == len(test)


@pytest.mark.parametrize(
    ("task", "splitter", "seed"), [("ESOL", "scaffold", None), ("FreeSolv", "random", 123), ("Lipop", "random", 124)]
)
def test_load_deepchem_task_reads_deepchems_file_and_split(tmp_path, moleculenet_dir, task, splitter, seed):
    filename = DEEPCHEM_LOADERS[task][1]
    (tmp_path / filename).write_bytes(gzip.decompress((moleculenet_dir / f"{task}.csv.gz").read_bytes()))
    loaded, mapped = load_deepchem_task(task, splitter=splitter, seed=seed, data_dir=tmp_path)
    reference = load_task(task, data_dir=moleculenet_dir, download=False)
    assert loaded.name == task and loaded.source == tmp_path / filename
    assert loaded.smiles == reference.smiles
    np.testing.assert_array_equal(loaded.y, reference.y)
    rows = (
        random_split(loaded.n_rows, seed=seed)
        if splitter == "random"
        else scaffold_split(pd.read_csv(tmp_path / filename)["smiles"].tolist())
    )
    _assert_same(mapped.split, to_positions(rows, loaded.row_index).split)


def test_load_deepchem_task_reports_rows_it_cannot_use(tmp_path, caplog):
    rows = [*SMILES, "C1CC", "CCCCO", "c1ccncc1", "CC(=O)Nc1ccc(O)cc1", "ClCCl"]
    pd.DataFrame({"smiles": rows, "expt": np.arange(len(rows), dtype=float)}).to_csv(
        tmp_path / "SAMPL.csv", index=False
    )
    with caplog.at_level(logging.WARNING, logger="molw2s.interop.deepchem"):
        task, mapped = load_deepchem_task("sampl", splitter="random", seed=0, frac=(0.5, 0.25, 0.25), data_dir=tmp_path)
    assert task.name == "FreeSolv" and len(task) == len(rows) - 1
    assert [(i.row, i.smiles) for i in task.invalid] == [(6, "C1CC")]
    assert np.concatenate(list(mapped.dropped.values())).tolist() == [6] and "1 split rows dropped" in caplog.text
    assert sum(mapped.split.sizes().values()) == len(task)


def test_load_deepchem_task_errors(tmp_path, monkeypatch):
    def offline(url, dest_dir):
        raise OSError("no network")

    monkeypatch.setattr(dc.utils.data_utils, "download_url", offline)
    with pytest.raises(DataNotFoundError, match=r"no Lipophilicity\.csv in .*no network"):
        load_deepchem_task("lipo", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="no deepchem loader for task 'Tox21'"):
        load_deepchem_task("Tox21", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown deepchem splitter 'nope'"):
        load_deepchem_task("ESOL", splitter="nope", data_dir=tmp_path)


def test_core_imports_do_not_load_deepchem_and_a_missing_deepchem_says_what_to_install():
    probe = (
        "import sys, molw2s, molw2s.interop\n"
        "assert 'deepchem' not in sys.modules\n"
        "sys.modules['deepchem'] = None\n"
        "try:\n    import molw2s.interop.deepchem\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "pip install 'molw2s[deepchem]'" in proc.stdout
