"""Shared fixtures. Real data is read from ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MOLW2S_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data directory; in CI it must exist, elsewhere tests needing it skip."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared data directory at {SHARED_DATA}")
        pytest.skip(f"shared data not found at {SHARED_DATA} (set MOLW2S_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def moleculenet_dir(shared_data: Path) -> Path:
    """../shared/data/moleculenet: ESOL, FreeSolv, Lipop (ChemBench layout) and splits/."""
    return shared_data / "moleculenet"


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A temp molw2s cache for the whole session, set before any module-scoped fixture
    runs, so no test ever writes to ~/.cache/molw2s."""
    old = os.environ.get("MOLW2S_DATA_DIR")
    os.environ["MOLW2S_DATA_DIR"] = str(tmp_path_factory.mktemp("molw2s_session_cache"))
    yield
    if old is None:
        os.environ.pop("MOLW2S_DATA_DIR", None)
    else:
        os.environ["MOLW2S_DATA_DIR"] = old


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh molw2s cache per test (module fixtures use the session one)."""
    monkeypatch.setenv("MOLW2S_DATA_DIR", str(tmp_path_factory.mktemp("molw2s_cache")))


@pytest.fixture(scope="session")
def make_tiny_checkpoint():
    """A builder of tiny randomly initialised MolBERT checkpoints whose vocabulary covers
    the given SMILES: ``make_tiny_checkpoint(path, smiles, layers=1, hidden=16)``."""
    import torch

    from molw2s.encoders.model import MolBertForPretraining, make_molbert_config
    from molw2s.encoders.model_files import save_model
    from molw2s.encoders.model_size import ModelSizeConfig
    from molw2s.encoders.tokenizer import build_vocab, make_tokenizer

    def build(path: Path, smiles: list[str], *, layers: int = 1, hidden: int = 16) -> Path:
        tok = make_tokenizer(build_vocab(smiles).token_to_id, max_length=128)
        torch.manual_seed(0)
        size = ModelSizeConfig(num_layers=layers, hidden_size=hidden, num_heads=2, intermediate_size=2 * hidden)
        config = make_molbert_config(
            size, vocab_size=len(tok), max_length=128, pad_token_id=tok.pad_token_id, physchem=None
        )
        save_model(MolBertForPretraining(config), tok, path)
        return path

    return build


@pytest.fixture(scope="session")
def logp_task_with_checkpoint(tmp_path_factory, make_tiny_checkpoint):
    """``(csv, model_dir)``: a 200-molecule CSV task (columns ``smiles``, ``logp``: RDKit's
    logP of NCI molecules) and a tiny checkpoint whose vocabulary covers it."""
    import pandas as pd

    from molw2s.data.tasks import load_task

    root = tmp_path_factory.mktemp("logp200")
    task = load_task("nci_logp")
    smiles, y = task.smiles[:200], task.y[:200]
    csv = root / "logp200.csv"
    pd.DataFrame({"smiles": smiles, "logp": y}).to_csv(csv, index=False)
    return csv, make_tiny_checkpoint(root / "model", smiles)
