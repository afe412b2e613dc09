"""What names a model: the :class:`ModelRef` every driver passes around, the options an
encoder is built with, and the protocols a model kind and an encoder implement.

Kinds (transformer checkpoints, featurisers, ...) live in their own modules and are
registered in :mod:`molw2s.encoders.refs`, which parses spec strings into references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from molw2s.errors import ConfigError

Pooling = Literal["cls", "mean"]
POOLINGS: tuple[Pooling, ...] = ("cls", "mean")
#: the one pooling default (every config, ``molw2s embed`` and the adapters)
DEFAULT_POOLING: Pooling = "mean"
Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[Precision, ...] = ("float32", "bfloat16")


class Encoder(Protocol):
    """Anything that embeds SMILES: fingerprints, descriptors, transformer checkpoints."""

    @property
    def name(self) -> str:
        """The spec string naming this encoder."""

    def identity(self) -> dict[str, Any]:
        """JSON-ready description of everything the output depends on (keys the cache)."""

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, d) float32 representations, one row per SMILES, in input order."""


@dataclass(frozen=True)
class EncoderOptions:
    """How a reference becomes an encoder; kinds ignore what does not apply to them
    (pooling, layer, batch size, device and precision apply to checkpoints)."""

    pooling: Pooling = DEFAULT_POOLING
    layer: int = -1
    batch_size: int = 64
    device: str = "auto"
    precision: Precision = "float32"

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference: its ``kind`` (a registered kind's name), its canonical
    ``spec`` string and, for kinds backed by files, their ``path``."""

    kind: str
    spec: str
    path: Path | None = None

    @property
    def is_checkpoint(self) -> bool:
        """True for a molw2s / BERT checkpoint directory (``bert:DIR``: a tokenizer whose
        vocabulary coverage the run reports)."""
        return self.kind == CHECKPOINT_KIND

    @property
    def is_transformer(self) -> bool:
        """True for a transformer (``bert:`` or ``hf:``): finetunable, has layers and poolings."""
        return self.kind in TRANSFORMER_KINDS

    def checkpoint(self, role: str) -> Path:
        """The transformer's directory; a ConfigError naming ``role`` for any other kind."""
        if not self.is_transformer or self.path is None:
            raise ConfigError(
                f"{role} finetunes a transformer, but {self.spec!r} is a {self.kind}, not a transformer checkpoint "
                "(use a family member, bert:DIR or hf:DIR_OR_NAME)"
            )
        return self.path


#: the kind name of transformer checkpoints (``bert:DIR``)
CHECKPOINT_KIND = "bert"
#: the kind name of any Hugging Face encoder (``hf:DIR_OR_NAME``)
HF_KIND = "hf"
#: the kinds whose references are transformers (layers, poolings, finetuning)
TRANSFORMER_KINDS = (CHECKPOINT_KIND, HF_KIND)


class ModelKind(Protocol):
    """One kind of model reference: how its spec strings parse, and how a reference
    becomes an :class:`Encoder` (whose ``identity()`` keys the embedding cache)."""

    @property
    def name(self) -> str:
        """The kind's name, stored in :attr:`ModelRef.kind`."""

    def parse(self, text: str) -> ModelRef | None:
        """The reference ``text`` names, or None when ``text`` is not of this kind (a
        ConfigError when it is, but is malformed)."""

    def encoder(self, ref: ModelRef, options: EncoderOptions) -> Encoder:
        """The encoder of ``ref`` (a ConfigError when its files are missing)."""

    def describe(self) -> str:
        """Spec forms for error messages, e.g. ``bert:PATH (or a model directory)``."""
