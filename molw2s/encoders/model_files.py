"""A model directory in Hugging Face format: ``config.json`` (a :class:`MolBertConfig`),
``model.safetensors`` and the tokenizer files; saved with ``save_pretrained`` and loaded
with ``from_pretrained``, strictly (every weight must match) and without log noise."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from molw2s.encoders.model_card import write_model_card
from molw2s.encoders.tokenizer import load_tokenizer, save_tokenizer
from molw2s.errors import ConfigError, MolW2SError
from molw2s.io import MANIFEST, verify_dir

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

    from molw2s.encoders.model import MolBertForPretraining, MolBertModel

MODEL_FILE = "model.safetensors"
#: ``model_type`` values of directories ``bert:DIR`` loads (``molbert``: older molw2s ones)
BERT_MODEL_TYPES = ("bert", "molbert")


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' warnings and progress bars (restored on exit)."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def save_model(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, directory: str | Path, *, card: str | None = None
) -> None:
    """``model.save_pretrained`` (safetensors) plus the tokenizer, and the model card
    ``README.md`` when ``card`` is given, into ``directory``."""
    with quiet_transformers():
        model.save_pretrained(str(directory))
    save_tokenizer(tokenizer, directory)
    if card is not None:
        write_model_card(directory, card)


def load_pretrained(directory: str | Path) -> tuple[MolBertForPretraining, PreTrainedTokenizerFast]:
    """Model (in eval mode) and tokenizer of a model directory.

    ``MolBertForPretraining.from_pretrained`` with transformers' warnings silenced; a
    MolW2SError names the directory if its files do not match the manifest molw2s wrote
    with them, or if any weight is missing, unexpected or misshapen.
    """
    from molw2s.encoders.model import MolBertForPretraining

    directory = _checked_model_dir(directory)
    with quiet_transformers():
        loaded = MolBertForPretraining.from_pretrained(str(directory), output_loading_info=True)
    # with output_loading_info=True, from_pretrained returns (model, info); its annotation says model only
    model, info = cast("tuple[MolBertForPretraining, dict[str, Any]]", loaded)
    problems = {k: sorted(v)[:5] for k, v in info.items() if v}
    if problems:
        raise MolW2SError(f"{directory}: weights do not match the model: {problems}")
    with quiet_transformers():  # AutoTokenizer reads config.json too
        tokenizer = load_tokenizer(directory)
    return model.eval(), tokenizer  # type: ignore[no-untyped-call]


def load_encoder(directory: str | Path) -> tuple[MolBertModel, PreTrainedTokenizerFast]:
    """The bare encoder (no pooler, no heads; in eval mode) and tokenizer of a model directory.

    Works for molw2s family members and snapshots and for any Hugging Face BERT directory
    with a ``tokenizer.json``: every encoder weight must be present (task heads in the
    file are ignored); a MolW2SError names the directory otherwise. A directory of another
    architecture (``model_type`` in ``config.json`` other than ``bert``, e.g. a RoBERTa,
    whose position ids differ) is refused with a ConfigError pointing to ``hf:DIR``.
    """
    from molw2s.encoders.model import MolBertModel

    directory = _checked_model_dir(directory)
    _check_bert(directory)
    with quiet_transformers():
        loaded = MolBertModel.from_pretrained(str(directory), add_pooling_layer=False, output_loading_info=True)
    model, info = cast("tuple[MolBertModel, dict[str, Any]]", loaded)
    problems = {k: sorted(v)[:5] for k, v in info.items() if v and k != "unexpected_keys"}
    if problems:
        raise MolW2SError(f"{directory}: encoder weights do not match the model: {problems}")
    if not (directory / "tokenizer.json").is_file():
        raise MolW2SError(f"{directory}: no tokenizer.json (a molw2s or Hugging Face fast-tokenizer directory)")
    with quiet_transformers():  # AutoTokenizer reads config.json too
        tokenizer = load_tokenizer(directory)
    return model.eval(), tokenizer  # type: ignore[no-untyped-call]


def _check_bert(directory: Path) -> None:
    """A ConfigError when ``config.json`` names another architecture than BERT (molw2s's
    own directories say ``bert``, older ones ``molbert``)."""
    config = directory / "config.json"
    model_type = json.loads(config.read_text()).get("model_type") if config.is_file() else None
    if model_type is not None and model_type not in BERT_MODEL_TYPES:
        raise ConfigError(
            f"{directory}: model type {model_type!r} is not BERT, and loading it as bert:DIR would give wrong "
            f"embeddings; use hf:{directory} (any Hugging Face encoder, read with AutoModel)"
        )


def _checked_model_dir(directory: str | Path) -> Path:
    """``directory`` as a Path, after checking it holds weights that match molw2s's manifest."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MolW2SError(f"{directory}: no such model directory")
    if not (directory / MODEL_FILE).is_file():
        raise MolW2SError(f"{directory}: no {MODEL_FILE} (not a model directory, or training did not finish)")
    if (directory / MANIFEST).is_file():  # written by molw2s: the files must match it
        problem = verify_dir(directory)
        if problem is not None:
            raise MolW2SError(f"{directory}: corrupt model ({problem}); retrain it (molw2s pretrain) or restore it")
    return directory
