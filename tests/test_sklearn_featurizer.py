"""MolW2SFeaturizer: SMILES in, features out, inside scikit-learn pipelines, clone and grid search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline

from molw2s.chem.smiles import canonicalize
from molw2s.data.tasks import load_task
from molw2s.encoders.embed import parse_encoder_spec
from molw2s.errors import DataError
from molw2s.interop.sklearn import MolW2SFeaturizer
from molw2s.w2s.heads import RidgeHead


@pytest.fixture(scope="module")
def logp() -> tuple[list[str], np.ndarray]:
    task = load_task("nci_logp")
    return task.smiles[:160], task.y[:160]


def test_rows_equal_the_encoder_on_canonical_smiles() -> None:
    raw = ["OCC", "c1ccccc1O", "C(=O)O"]
    features = MolW2SFeaturizer("maccs").fit(raw).transform(raw)
    expected = parse_encoder_spec("maccs").encode([canonicalize(s) for s in raw])
    assert features.shape == (3, 167) and np.array_equal(features, expected)


def test_pipeline_with_a_ridge_head_learns_logp(logp) -> None:
    smiles, y = logp
    model = make_pipeline(MolW2SFeaturizer("rdkit2d"), RidgeHead(beta=1.0, scale="none"))
    model.fit(smiles[:120], y[:120])
    pred = model.predict(smiles[120:])
    assert np.corrcoef(pred, y[120:])[0, 1] > 0.8  # RDKit descriptors nearly contain Crippen logP


def test_clone_and_grid_search_over_the_encoder(logp) -> None:
    smiles, y = logp
    pipe = make_pipeline(MolW2SFeaturizer(), Ridge())
    copy = clone(pipe)
    assert copy.get_params()["molw2sfeaturizer__encoder"] == "ecfp4-2048" and copy is not pipe
    search = GridSearchCV(
        pipe,
        {"molw2sfeaturizer__encoder": ["ecfp4-1024", "maccs"], "ridge__alpha": [1.0, 10.0]},
        cv=KFold(3),
        scoring="neg_root_mean_squared_error",
    )
    search.fit(np.asarray(smiles, dtype=object), y)
    assert set(search.cv_results_["param_molw2sfeaturizer__encoder"]) == {"ecfp4-1024", "maccs"}
    assert search.best_estimator_.predict(smiles[:5]).shape == (5,)


def test_dataframe_column_input_and_pandas_output() -> None:
    frame = pd.DataFrame({"smiles": ["CCO", "CCN"]})
    featurizer = MolW2SFeaturizer("ecfp4-64").set_output(transform="pandas")
    out = featurizer.fit_transform(frame)
    assert isinstance(out, pd.DataFrame) and out.shape == (2, 64) and out.columns[0] == "ecfp4-64_0"


def test_checkpoint_encoder(logp, tmp_path, make_tiny_checkpoint) -> None:
    smiles, _ = logp
    model_dir = make_tiny_checkpoint(tmp_path / "m", smiles)
    featurizer = MolW2SFeaturizer(f"bert:{model_dir}", pooling="mean").fit(smiles[:3])
    features = featurizer.transform(smiles[:3])
    expected = parse_encoder_spec(f"bert:{model_dir}", pooling="mean").encode(smiles[:3])
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    assert featurizer.n_features_out_ == features.shape[1]
    half = clone(featurizer).set_params(precision="bfloat16").fit(smiles[:3])
    assert half.encoder_.precision == "bfloat16"
    np.testing.assert_allclose(half.transform(smiles[:3]), expected, rtol=0.05, atol=0.05)


def test_bad_input_names_the_row() -> None:
    featurizer = MolW2SFeaturizer("maccs").fit(["CCO"])
    with pytest.raises(DataError, match=r"row 1.*'C1CC'"):
        featurizer.transform(["CCO", "C1CC", "CCN"])
    with pytest.raises(DataError, match="row 2 is not a SMILES string: 5"):
        featurizer.transform(["CCO", "CCN", 5])
    with pytest.raises(DataError, match=r"one column of SMILES, got an array of shape \(2, 2\)"):
        featurizer.transform([["CCO", "CCN"], ["C", "N"]])
    with pytest.raises(DataError, match="no molecules to fit on"):
        MolW2SFeaturizer().fit([])
