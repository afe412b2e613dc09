"""describe_models: kind, independent source, size, training and a description per weak model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import get_args

import pandas as pd
import pytest
from safetensors import safe_open

from molw2s.analysis.plots import KIND_MARKERS
from molw2s.chem.descriptors import descriptor_names
from molw2s.experiment.config import load_experiment_config
from molw2s.experiment.model_info import COLUMNS, ModelKindName, describe_models
from molw2s.experiment.models import resolve_models
from molw2s.io import write_verified_dir

CONFIGS = Path(__file__).parents[1] / "configs"
SMILES = ["CCO", "c1ccccc1O", "CC(=O)N", "ClCCBr"]


def _encoder_params(model_dir: Path) -> int:
    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as fh:
        return sum(math.prod(fh.get_slice(k).get_shape()) for k in fh.keys() if k.startswith("bert."))  # noqa: SIM118


@pytest.fixture(scope="module")
def described(tmp_path_factory, make_tiny_checkpoint) -> tuple[pd.DataFrame, Path]:
    """The quickstart family with only weak_s 'trained' (a tiny checkpoint exported with
    its manifest and MLM accuracy), a bert: directory outside the family, featurisers,
    a composite, expand variants and controlled models."""
    tmp = tmp_path_factory.mktemp("info")
    config = load_experiment_config(CONFIGS / "quickstart.yaml", [f"run_dir={tmp / 'run'}"])
    outside = make_tiny_checkpoint(tmp / "outside", SMILES, layers=1, hidden=16)
    base = ["strong", "weak_s", "weak_s@200", "weak_xs", f"bert:{outside}", "ecfp4-1024", "maccs", "rdkit2d"]
    resolved = resolve_models([*base, "concat:weak_xs+maccs*2"], config)
    final = resolved.models_dir / "weak_s" / "final"
    meta = {"kind": "model", "member": "weak_s", "step": 600, "metrics": {"mlm_accuracy": 0.625}}

    def fill(directory: Path) -> None:
        make_tiny_checkpoint(directory, SMILES, layers=2, hidden=64)

    write_verified_dir(final, fill, meta)
    names = [
        "weak_s",
        "weak_s|layer=0",
        "weak_s|pooling=cls",
        "weak_s@200",
        "weak_xs",
        f"bert:{outside}",
        "ecfp4-1024",
        "maccs",
        "rdkit2d",
        "concat:weak_xs+maccs*2",
        "ctrl:subspace=8",
        "ctrl:noise=0.5",
        "ctrl:mix=maccs@0.3",
    ]
    return describe_models(names, resolved, strong="strong").set_index("weak", drop=False), final


def test_kinds_and_columns(described):
    frame, _ = described
    assert tuple(frame.columns) == COLUMNS
    kinds: dict[str, ModelKindName] = {
        "weak_s": "transformer",
        "weak_s|layer=0": "transformer",
        "weak_s@200": "transformer",
        "ecfp4-1024": "fingerprint",
        "maccs": "fingerprint",
        "rdkit2d": "descriptor",
        "concat:weak_xs+maccs*2": "composite",
        "ctrl:subspace=8": "controlled",
        "ctrl:mix=maccs@0.3": "controlled",
    }
    assert frame.loc[list(kinds), "kind"].to_dict() == kinds
    assert str(frame["layers"].dtype) == "Int64" and str(frame["params"].dtype) == "Int64"
    assert set(get_args(ModelKindName)) == set(KIND_MARKERS)  # every kind has its marker in the figures


def test_variants_share_their_checkpoints_source_and_snapshots_and_controls_do_not(described):
    frame, _ = described
    sources = frame["source"].to_dict()
    assert sources["weak_s"] == sources["weak_s|layer=0"] == sources["weak_s|pooling=cls"] == "weak_s"
    assert sources["weak_s@200"] == "weak_s@200" and sources["weak_xs"] == "weak_xs"
    assert {sources[n] for n in frame.index if n.startswith("ctrl:")} == {"controlled"}
    assert sources["ecfp4-1024"] == "ecfp4-1024"
    assert frame["source"].nunique() == 9  # of 13 names: the two variants and two more controls add none


def test_a_trained_member_reports_size_steps_params_and_mlm_accuracy(described):
    frame, final = described
    row = frame.loc["weak_s"]
    assert (row.layers, row.hidden, row.pretrain_steps, row.dim) == (2, 64, 600, 64)
    assert row.params == _encoder_params(final) > 0
    assert row.mlm_acc == pytest.approx(0.625)
    assert row.description == "MolBERT 2 layers x 64, 600 steps, MLM acc 0.62"
    assert frame.loc["weak_s|layer=0", "description"] == row.description + ", layer 0 (the embeddings)"
    assert frame.loc["weak_s|pooling=cls", "description"] == row.description + ", cls pooling"
    assert frame.loc["weak_s|pooling=cls", "params"] == row.params


def test_untrained_members_have_configured_sizes_and_no_metrics(described):
    frame, _ = described
    snap = frame.loc["weak_s@200"]
    assert (snap.layers, snap.hidden, snap.pretrain_steps) == (2, 64, 200)
    assert pd.isna(snap.params) and pd.isna(snap.mlm_acc)
    assert snap.description == "MolBERT 2 layers x 64, 200 steps (not trained yet)"
    assert frame.loc["weak_xs", "pretrain_steps"] == 300


def test_featurisers_composites_outside_checkpoints_and_controls(described):
    frame, _ = described
    assert frame.loc["ecfp4-1024", ["dim", "description"]].tolist() == [1024, "ECFP4 1024 bits"]
    assert frame.loc["maccs", "dim"] == 167
    n_desc = len(descriptor_names())
    assert frame.loc["rdkit2d", ["dim", "description"]].tolist() == [
        n_desc,
        f"RDKit 2D descriptors ({n_desc}, signed log)",
    ]
    concat = frame.loc["concat:weak_xs+maccs*2"]
    assert concat.dim == 32 + 167 and concat.description == "concatenation of weak_xs + maccs (weight 2)"
    outside = frame.loc[next(n for n in frame.index if n.startswith("bert:"))]
    assert (outside.kind, outside.layers, outside.hidden, outside.dim) == ("transformer", 1, 16, 16)
    assert pd.isna(outside.pretrain_steps) and pd.isna(outside.mlm_acc) and pd.isna(outside.params)
    assert outside.description.startswith("BERT checkpoint ") and outside.description.endswith(", 1 layer x 16")
    sub = frame.loc["ctrl:subspace=8"]
    assert sub.dim == 8 and sub.description == "random 8-d subspace of the strong representation"
    assert frame.loc["ctrl:noise=0.5", "dim"] == 128  # the strong model's hidden size
    assert frame.loc["ctrl:mix=maccs@0.3", "dim"] == 128 + 167
