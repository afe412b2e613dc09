"""Transformer checkpoints as encoders: pooled hidden states of a MolBERT directory
(``bert:PATH`` or an existing directory), and their model kind.

Embeddings are pooled from one layer (``cls``: the [CLS] vector; ``mean``: the mean over
the real tokens, [CLS] and [SEP] included), computed without gradients in length-sorted
batches, and returned in the input order. ``precision="bfloat16"`` runs the forward pass
under bf16 autocast (faster where the hardware has bf16 units; the embeddings differ from
float32 at rounding level and are cached apart; docs/benchmarks.md measures both).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from molw2s.encoders.spec import (
    CHECKPOINT_KIND,
    DEFAULT_POOLING,
    PRECISIONS,
    EncoderOptions,
    ModelRef,
    Pooling,
    Precision,
)
from molw2s.encoders.tokenizer import SMILES_FORM_KEY
from molw2s.errors import ConfigError
from molw2s.io import file_digest

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: the files of a checkpoint directory an embedding depends on
CHECKPOINT_FILES = ("model.safetensors", "config.json", "tokenizer.json")
PREFIX = f"{CHECKPOINT_KIND}:"


@dataclass
class TransformerEncoder:
    """Pooled hidden states of a pretrained MolBERT checkpoint directory.

    The model, tokenizer and file digests are loaded on first use and kept while the
    encoder lives (reloaded if the weights file changes), so embedding several tasks with
    one encoder loads and hashes the checkpoint once.
    """

    path: Path
    pooling: Pooling = DEFAULT_POOLING
    layer: int = -1
    batch_size: int = 64
    sort_by_length: bool = True
    device: str = "auto"
    precision: Precision = "float32"
    last_counts: dict[str, int] = field(default_factory=dict)  # [UNK] tokens and truncated SMILES, last call
    _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def name(self) -> str:
        """``bert:<path>``."""
        return f"bert:{self.path}"

    def identity(self) -> dict[str, Any]:
        """Digests of the weights, config and tokenizer, plus pooling, layer, the SMILES
        spelling the tokenizer asks for and a precision other than float32."""
        files = self._cached("digests", self._file_digests)
        identity = {"kind": "bert", "files": files, "pooling": self.pooling, "layer": self.layer}
        tokenizer_config = self.path / "tokenizer_config.json"
        form = json.loads(tokenizer_config.read_text()).get(SMILES_FORM_KEY) if tokenizer_config.is_file() else None
        if form is not None:  # keys the cache only when set, so older caches stay valid
            identity[SMILES_FORM_KEY] = form
        if self.precision != "float32":  # likewise: float32 caches keep their keys
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
        from molw2s.encoders.tokenizer import encode_smiles

        model, tokenizer, device = self._cached(f"model@{self.device}", self._load)
        n_states = model.config.num_hidden_layers + 1
        if not -n_states <= self.layer < n_states:
            raise ConfigError(
                f"layer {self.layer} out of range for a {n_states - 1}-layer model (0 = embeddings, -1 = last)"
            )
        encoded = encode_smiles(tokenizer, smiles, max_length=model.config.max_position_embeddings)
        self.last_counts = {"unk_tokens": encoded.n_unk, "truncated": len(encoded.truncated)}
        if encoded.truncated:
            log.warning(
                "%s: %d SMILES longer than %d tokens were truncated",
                self.name,
                len(encoded.truncated),
                model.config.max_position_embeddings,
            )
        lengths = np.array([len(s) for s in encoded.ids])
        order = np.argsort(lengths, kind="stable") if self.sort_by_length else np.arange(len(lengths))
        pin = device.type == "cuda"
        last = self.layer in (-1, n_states - 1)  # the last layer's output: no other layer kept
        pooled = []
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")
        with torch.inference_mode(), autocast:
            for start in tqdm(
                range(0, len(order), self.batch_size), desc=self.path.name, unit="batch", disable=not progress
            ):
                ids, attention = pad_batch(
                    [encoded.ids[i] for i in order[start : start + self.batch_size]], tokenizer.pad_token_id
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
        """``make()``, computed once per version of the checkpoint's files."""
        signature = tuple(
            (s.st_size, s.st_mtime_ns, s.st_ino)
            for s in (p.stat() for p in (self.path / n for n in CHECKPOINT_FILES) if p.exists())
        )
        if self._loaded.get(f"{what}:signature") != signature:
            self._loaded[what] = make()
            self._loaded[f"{what}:signature"] = signature
        return self._loaded[what]

    def _file_digests(self) -> dict[str, str]:
        return {n: file_digest(self.path / n, "sha256") for n in CHECKPOINT_FILES}

    def _load(self) -> tuple[Any, Any, torch.device]:
        from molw2s.encoders.device import resolve_device
        from molw2s.encoders.model_files import load_encoder

        model, tokenizer = load_encoder(self.path)
        device = resolve_device(self.device)
        return model.to(device).eval(), tokenizer, device  # type: ignore[arg-type]


def pool(hidden: torch.Tensor, attention: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """[CLS] vector or masked mean over real tokens: (batch, length, d) -> (batch, d)."""
    if pooling == "cls":
        return hidden[:, 0]
    weights = attention.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1)


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

    def encoder(self, ref: ModelRef, options: EncoderOptions) -> TransformerEncoder:
        """The pooled-hidden-state encoder of the checkpoint directory."""
        assert ref.path is not None
        if not (ref.path / "model.safetensors").is_file():
            raise ConfigError(
                f"encoder {ref.spec!r}: {ref.path} is not a pretrained model directory (no model.safetensors)"
            )
        return TransformerEncoder(
            ref.path,
            pooling=options.pooling,
            layer=options.layer,
            batch_size=options.batch_size,
            device=options.device,
            precision=options.precision,
        )

    def describe(self) -> str:
        """The spec forms of checkpoints."""
        return "bert:PATH (or a model directory)"


def checkpoint_ref(path: Path) -> ModelRef:
    """The reference of the checkpoint directory ``path`` (spec ``bert:<path>``)."""
    return ModelRef(CHECKPOINT_KIND, f"{PREFIX}{path}", path)
