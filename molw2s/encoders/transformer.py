"""Transformers as encoders: pooled hidden states of a MolBERT directory (``bert:PATH`` or
an existing directory, this module's model kind) or of any Hugging Face encoder (``hf:``,
:mod:`molw2s.encoders.hf`), which share :class:`TransformerEncoder` through
:class:`TransformerFiles` (how a model's files load, tokenize SMILES and are hashed).

Embeddings are pooled from one layer (``cls``: the first token's vector, [CLS] for BERT;
``mean``: the mean over the real tokens, special tokens included), computed without
gradients in length-sorted batches, and returned in the input order. ``precision="bfloat16"``
runs the forward pass under bf16 autocast (faster where the hardware has bf16 units; the
embeddings differ from float32 at rounding level and are cached apart; docs/benchmarks.md
measures both).
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from molw2s.encoders.spec import (
    CHECKPOINT_KIND,
    DEFAULT_POOLING,
    PRECISIONS,
    EncoderOptions,
    ModelKind,
    ModelRef,
    Pooling,
    Precision,
)
from molw2s.encoders.tokenizer import SMILES_FORM_KEY, EncodedBatch, encode_smiles
from molw2s.errors import ConfigError
from molw2s.io import content_hash, file_digest
from molw2s.progress import show_progress

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

log = logging.getLogger(__name__)

#: the files of a checkpoint directory an embedding depends on
CHECKPOINT_FILES = ("model.safetensors", "config.json", "tokenizer.json")
PREFIX = f"{CHECKPOINT_KIND}:"


class TransformerFiles(ABC):
    """A transformer's files: how its bare encoder and tokenizer load, how SMILES become its
    token ids, and what its outputs depend on. ``bert:`` checkpoints (:class:`BertFiles`) and
    ``hf:`` models (:class:`molw2s.encoders.hf.HFFiles`) implement it; embedding
    (:class:`TransformerEncoder`) and finetuning (:mod:`molw2s.finetuning`) share it."""

    path: Path

    @property
    @abstractmethod
    def spec(self) -> str:
        """The spec string naming the model (``bert:<path>``, ``hf:<name>[?options]``)."""

    @abstractmethod
    def watched_files(self) -> list[Path]:
        """The files the outputs depend on (hashed for :meth:`identity`; a change reloads)."""

    @abstractmethod
    def identity(self, digests: dict[str, str]) -> dict[str, Any]:
        """JSON-ready: the kind, ``digests`` (:meth:`digests`) and how SMILES are spelled."""

    @abstractmethod
    def load(self) -> tuple[PreTrainedModel, Any]:
        """A fresh bare encoder (eval mode, on the CPU) and its tokenizer."""

    @abstractmethod
    def tokenize(self, tokenizer: Any, smiles: Sequence[str], *, max_length: int) -> EncodedBatch:
        """Token ids (with the model's special tokens, at most ``max_length``) of ``smiles``."""

    @abstractmethod
    def n_layers(self) -> int:
        """The encoder's transformer layers (read from its config, without loading weights)."""

    def max_length(self, model: PreTrainedModel, tokenizer: Any) -> int:
        """The longest token sequence ``model`` reads: its position table's size."""
        return int(model.config.max_position_embeddings)

    def weights_digest(self) -> str:
        """What finetuned models depend on besides their settings (keys finetuning caches)."""
        return content_hash(self.identity(self.digests()))

    def digests(self) -> dict[str, str]:
        """sha256 of each of :meth:`watched_files`, by name."""
        return {str(p.relative_to(self.path)): file_digest(p, "sha256") for p in self.watched_files()}


@dataclass
class BertFiles(TransformerFiles):
    """A molw2s (or any Hugging Face BERT) checkpoint directory: ``bert:PATH``."""

    path: Path

    @property
    def spec(self) -> str:
        """``bert:<path>``."""
        return f"{PREFIX}{self.path}"

    def watched_files(self) -> list[Path]:
        """Weights, config and tokenizer (:data:`CHECKPOINT_FILES`)."""
        return [self.path / n for n in CHECKPOINT_FILES]

    def identity(self, digests: dict[str, str]) -> dict[str, Any]:
        """Digests of the weights, config and tokenizer, and the SMILES spelling the
        tokenizer asks for (only when set, so older caches stay valid)."""
        identity: dict[str, Any] = {"kind": CHECKPOINT_KIND, "files": digests}
        tokenizer_config = self.path / "tokenizer_config.json"
        form = json.loads(tokenizer_config.read_text()).get(SMILES_FORM_KEY) if tokenizer_config.is_file() else None
        if form is not None:
            identity[SMILES_FORM_KEY] = form
        return identity

    def load(self) -> tuple[PreTrainedModel, Any]:
        """:func:`molw2s.encoders.model_files.load_encoder` (BERT only: it refuses other types)."""
        from molw2s.encoders import model_files

        return model_files.load_encoder(self.path)

    def tokenize(self, tokenizer: Any, smiles: Sequence[str], *, max_length: int) -> EncodedBatch:
        """:func:`molw2s.encoders.tokenizer.encode_smiles` (kekulized when the tokenizer says so)."""
        return encode_smiles(tokenizer, smiles, max_length=max_length)

    def n_layers(self) -> int:
        """``num_hidden_layers`` of ``config.json``."""
        return int(json.loads((self.path / "config.json").read_text())["num_hidden_layers"])

    def weights_digest(self) -> str:
        """sha256 of ``model.safetensors`` (the finetuning caches' key since before ``hf:``)."""
        return file_digest(self.path / "model.safetensors", "sha256")


def transformer_files(checkpoint: str | Path | TransformerFiles) -> TransformerFiles:
    """``checkpoint`` as transformer files: a directory is a ``bert:`` checkpoint."""
    return checkpoint if isinstance(checkpoint, TransformerFiles) else BertFiles(Path(checkpoint))


@dataclass(frozen=True)
class LoadedTransformer:
    """A transformer ready to embed: the bare encoder on its device, its tokenizer, and the
    longest sequence it reads."""

    model: PreTrainedModel
    tokenizer: Any
    device: torch.device
    max_length: int


@dataclass
class TransformerEncoder:
    """Pooled hidden states of a transformer: ``checkpoint`` is its :class:`TransformerFiles`
    (``bert:`` or ``hf:``) or a ``bert:`` checkpoint directory.

    The model, tokenizer and file digests are loaded on first use and kept while the
    encoder lives (reloaded if a watched file changes), so embedding several tasks with
    one encoder loads and hashes the model once.
    """

    checkpoint: str | Path | TransformerFiles  # a directory is a bert: checkpoint
    pooling: Pooling = DEFAULT_POOLING
    layer: int = -1
    batch_size: int = 64
    sort_by_length: bool = True
    device: str = "auto"
    precision: Precision = "float32"
    last_counts: dict[str, int] = field(default_factory=dict)  # [UNK] tokens and truncated SMILES, last call
    files: TransformerFiles = field(init=False, repr=False)
    _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.files = transformer_files(self.checkpoint)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def path(self) -> Path:
        """The model directory."""
        return self.files.path

    @property
    def name(self) -> str:
        """The model's spec (``bert:<path>``, ``hf:<name>``)."""
        return self.files.spec

    def identity(self) -> dict[str, Any]:
        """The files' identity (digests, SMILES spelling) plus pooling, layer and a precision
        other than float32 (float32 caches keep their keys)."""
        digests = self._cached("digests", self.files.digests)
        identity = {**self.files.identity(digests), "pooling": self.pooling, "layer": self.layer}
        if self.precision != "float32":
            identity["precision"] = self.precision
        return identity

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, hidden) float32 embeddings, in the order of ``smiles``.

        Batches are padded on the host (pinned when the model is on a GPU) and copied
        without blocking; pooled vectors stay on the device until the last batch, so the
        loop never waits for the device (the padding mask goes in 4-d, and only the last
        layer is computed when it is the one pooled). ``precision: bfloat16`` runs the forward pass under
        bf16 autocast; pooling is always float32.
        """
        import torch
        from tqdm.auto import tqdm

        from molw2s.encoders.model import padding_attention_mask
        from molw2s.encoders.padding import pad_batch

        loaded: LoadedTransformer = self._cached(f"model@{self.device}", self._load)
        model, device = loaded.model, loaded.device
        n_states = model.config.num_hidden_layers + 1
        if not -n_states <= self.layer < n_states:
            raise ConfigError(
                f"layer {self.layer} out of range for a {n_states - 1}-layer model (0 = embeddings, -1 = last)"
            )
        encoded = self.files.tokenize(loaded.tokenizer, smiles, max_length=loaded.max_length)
        self.last_counts = {"unk_tokens": encoded.n_unk, "truncated": len(encoded.truncated)}
        if encoded.truncated:
            log.warning(
                "%s: %d SMILES longer than %d tokens were truncated",
                self.name,
                len(encoded.truncated),
                loaded.max_length,
            )
        lengths = np.array([len(s) for s in encoded.ids])
        order = np.argsort(lengths, kind="stable") if self.sort_by_length else np.arange(len(lengths))
        pin = device.type == "cuda"
        last = self.layer in (-1, n_states - 1)  # the last layer's output: no other layer kept
        pooled = []
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")
        with torch.inference_mode(), autocast:
            for start in tqdm(
                range(0, len(order), self.batch_size),
                desc=self.path.name,
                unit="batch",
                disable=not show_progress(progress),
            ):
                ids, attention = pad_batch(
                    [encoded.ids[i] for i in order[start : start + self.batch_size]], loaded.tokenizer.pad_token_id
                )
                if pin:
                    ids, attention = ids.pin_memory(), attention.pin_memory()
                ids, attention = ids.to(device, non_blocking=True), attention.to(device, non_blocking=True)
                mask = padding_attention_mask(model.config, attention)
                out = model(input_ids=ids, attention_mask=mask, output_hidden_states=not last)
                hidden = out.last_hidden_state if last else out.hidden_states[self.layer]
                pooled.append(pool(hidden.float(), attention, self.pooling))
        out = np.zeros((len(lengths), model.config.hidden_size), dtype=np.float32)
        if pooled:
            out[order] = torch.cat(pooled).cpu().numpy()
        return out

    def _cached(self, what: str, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per version of the model's watched files."""
        signature = tuple(
            (s.st_size, s.st_mtime_ns, s.st_ino) for s in (p.stat() for p in self.files.watched_files() if p.exists())
        )
        if self._loaded.get(f"{what}:signature") != signature:
            self._loaded[what] = make()
            self._loaded[f"{what}:signature"] = signature
        return self._loaded[what]

    def _load(self) -> LoadedTransformer:
        from molw2s.encoders.device import resolve_device

        model, tokenizer = self.files.load()
        device = resolve_device(self.device)
        model.to(device)  # type: ignore[arg-type]
        return LoadedTransformer(model, tokenizer, device, self.files.max_length(model, tokenizer))


def pool(hidden: torch.Tensor, attention: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """[CLS] vector or masked mean over real tokens: (batch, length, d) -> (batch, d)."""
    if pooling == "cls":
        return hidden[:, 0]
    weights = attention.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1)


def transformer_encoder(files: TransformerFiles, options: EncoderOptions) -> TransformerEncoder:
    """The pooled-hidden-state encoder of ``files`` built with ``options``."""
    return TransformerEncoder(
        files,
        pooling=options.pooling,
        layer=options.layer,
        batch_size=options.batch_size,
        device=options.device,
        precision=options.precision,
    )


@runtime_checkable
class TransformerKind(ModelKind, Protocol):
    """A model kind whose references are transformers: layers and poolings apply to them,
    and finetuning reads their :class:`TransformerFiles`."""

    def files(self, ref: ModelRef) -> TransformerFiles:
        """The transformer files ``ref`` names."""


class CheckpointKind:
    """``bert:PATH`` (prefix in any case) or an existing directory: a checkpoint, checked
    for its weights file when its encoder is built (a family member may train later)."""

    name = CHECKPOINT_KIND

    def parse(self, text: str) -> ModelRef | None:
        """A checkpoint reference with the canonical spec ``bert:<path>``."""
        prefixed = text.lower().startswith(PREFIX)
        if not prefixed and not Path(text).expanduser().is_dir():
            return None
        path = Path(text[len(PREFIX) :] if prefixed else text).expanduser()
        return checkpoint_ref(path)

    def files(self, ref: ModelRef) -> BertFiles:
        """The checkpoint directory's files (its weights are checked when loaded)."""
        assert ref.path is not None
        return BertFiles(ref.path)

    def encoder(self, ref: ModelRef, options: EncoderOptions) -> TransformerEncoder:
        """The pooled-hidden-state encoder of the checkpoint directory."""
        assert ref.path is not None
        if not (ref.path / "model.safetensors").is_file():
            raise ConfigError(
                f"encoder {ref.spec!r}: {ref.path} is not a pretrained model directory (no model.safetensors)"
            )
        return transformer_encoder(self.files(ref), options)

    def describe(self) -> str:
        """The spec forms of checkpoints."""
        return "bert:PATH (or a model directory)"


def checkpoint_ref(path: Path) -> ModelRef:
    """The reference of the checkpoint directory ``path`` (spec ``bert:<path>``)."""
    return ModelRef(CHECKPOINT_KIND, f"{PREFIX}{path}", path)
