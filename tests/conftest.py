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


@pytest.fixture(scope="session")
def make_tiny_hf_model():
    """A builder of tiny randomly initialised Hugging Face encoders of another architecture
    than molw2s's BERT, saved with their own fast tokenizer (WordLevel over the SMILES
    tokens of the given molecules, ``<s> ... </s>`` for RoBERTa, ``... </s>`` for T5):
    ``make_tiny_hf_model(path, smiles, arch="roberta" | "t5", seed=0)``. Nothing downloads."""
    import torch
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel, T5Config, T5Model

    from molw2s.encoders.tokenizer import SMILES_REGEX, SPECIAL_TOKENS, build_vocab

    def build(path: Path, smiles: list[str], *, arch: str = "roberta", seed: int = 0) -> Path:
        special = ["<pad>", "<unk>", "</s>"] + (["<s>"] if arch == "roberta" else [])
        atoms = [t for t in build_vocab(smiles).token_to_id if t not in SPECIAL_TOKENS]
        vocab = {t: i for i, t in enumerate(special + atoms)}
        core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
        core.pre_tokenizer = pre_tokenizers.Split(Regex(SMILES_REGEX), behavior="isolated")
        template = "<s> $A </s>" if arch == "roberta" else "$A </s>"
        core.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[(t, vocab[t]) for t in ("<s>", "</s>") if t in vocab]
        )
        extra = {"bos_token": "<s>", "cls_token": "<s>", "sep_token": "</s>"} if arch == "roberta" else {}
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="</s>", model_max_length=64, **extra
        )
        torch.manual_seed(seed)
        ids = {"vocab_size": len(vocab), "pad_token_id": 0, "eos_token_id": vocab["</s>"]}
        if arch == "roberta":  # 2 layers, hidden 16; 64 tokens (positions start after the padding index)
            shape = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
            config = RobertaConfig(**shape, **ids, max_position_embeddings=66, bos_token_id=vocab["<s>"])
            model = RobertaModel(config, add_pooling_layer=False)
        else:  # an encoder-decoder: molw2s reads its encoder half
            config = T5Config(**ids, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2, decoder_start_token_id=0)
            model = T5Model(config)
        model.save_pretrained(str(path))
        tokenizer.save_pretrained(str(path))
        return path

    return build
