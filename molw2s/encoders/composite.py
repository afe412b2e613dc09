"""Composite representations: ``concat:SPEC+SPEC+...``, each part's block standardised
and weighted, the blocks concatenated.

Grammar: ``concat:`` then parts joined by ``+``; each part is any model spec (``rdkit2d``,
``ecfp4-2048``, ``table:FILE``, ``bert:DIR``; in a config also a family member such as
``strong``, resolved by :mod:`molw2s.experiment.models`), optionally followed by ``*W`` with
``W`` a positive decimal weight (``concat:strong*2+rdkit2d``). A part's spec may not itself
contain ``+`` (nor be a ``concat:``).

Standardisation (per block, not per feature): each block is centred and divided by the
square root of its total variance (the sum of its features' variances), then multiplied by
``sqrt(W)``, so block ``i`` holds a share ``W_i / sum(W)`` of the composite's total variance.
No part dominates by scale (a 2048-bit fingerprint against 200 descriptors, or raw counts
against log-scaled values), while the relative scales of the features inside a part stay as
the part defines them: z-scoring every feature would instead give each part a variance
share proportional to its width and inflate rare fingerprint bits to the scale of
descriptors. The statistics (one mean per feature and one scale per block) are those of
the molecules embedded together (in ``molw2s run`` and ``embed``: all the task's molecules):
transductive but label-free, as the controlled ``mix`` models are. The heads centre their
features on their own training part anyway, so only the per-block scale can carry
anything from test molecules, and it is one number per block. In the scikit-learn and
deepchem adapters each ``transform`` / ``featurize`` call standardises with its own
molecules: transform all molecules in one call.

Each part's rows come from the embedding cache (:mod:`molw2s.encoders.cache`), shared with
the part used on its own, so ``strong`` and ``concat:strong+rdkit2d`` embed ``strong`` once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from molw2s.encoders.cache import cached_encoding
from molw2s.encoders.spec import Encoder, EncoderOptions, ModelRef
from molw2s.errors import ConfigError

CONCAT_KIND = "concat"
PREFIX = f"{CONCAT_KIND}:"
_WEIGHT = re.compile(r"^(.+?)\*(\d+(?:\.\d*)?|\.\d+)$")


def split_concat(text: str) -> list[tuple[str, float]] | None:
    """The (part spec, weight) pairs of a ``concat:`` spec; None when ``text`` is not one,
    a ConfigError when it is but is malformed."""
    if not text.lower().startswith(PREFIX):
        return None
    parts = [part.strip() for part in text[len(PREFIX) :].split("+")]
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"encoder {text!r}: concat needs at least two non-empty parts, e.g. concat:rdkit2d+maccs")
    out = []
    for part in parts:
        match = _WEIGHT.match(part)
        spec, weight = (match.group(1).strip(), float(match.group(2))) if match else (part, 1.0)
        if weight <= 0:
            raise ConfigError(f"encoder {text!r}: the weight of part {spec!r} must be positive, got {weight:g}")
        if spec.lower().startswith(PREFIX):
            raise ConfigError(f"encoder {text!r}: a concat part cannot be a concat itself")
        out.append((spec, weight))
    return out


def concat_ref(parts: Sequence[tuple[ModelRef, float]]) -> ModelRef:
    """The reference of the composite of ``parts``, spelled with each part's canonical spec."""
    body = "+".join(ref.spec + ("" if weight == 1.0 else f"*{weight:g}") for ref, weight in parts)
    return ModelRef(CONCAT_KIND, PREFIX + body)


class ConcatKind:
    """``concat:SPEC+SPEC*W+...``; parts are parsed and built by the registry's own functions
    (handed in by :mod:`molw2s.encoders.refs`, which registers this kind)."""

    name = CONCAT_KIND

    def __init__(
        self, parse_part: Callable[[str], ModelRef], build_part: Callable[[ModelRef, EncoderOptions], Encoder]
    ) -> None:
        self._parse_part = parse_part
        self._build_part = build_part

    def parse(self, text: str) -> ModelRef | None:
        """The composite reference, every part parsed (an unknown part is an error here)."""
        parts = split_concat(text)
        if parts is None:
            return None
        return concat_ref([(self._parse_part(spec), weight) for spec, weight in parts])

    def encoder(self, ref: ModelRef, options: EncoderOptions) -> ConcatEncoder:
        """Every part's encoder, built with ``options``."""
        parts = split_concat(ref.spec)
        assert parts is not None  # parse accepted it
        encoders = tuple(self._build_part(self._parse_part(spec), options) for spec, _ in parts)
        return ConcatEncoder(ref.spec, encoders, tuple(weight for _, weight in parts))

    def describe(self) -> str:
        """The spec form of composites."""
        return "concat:SPEC+SPEC*W+... (weights optional)"


@dataclass
class ConcatEncoder:
    """The standardised, weighted blocks of ``parts`` side by side (see the module docstring)."""

    spec: str
    parts: tuple[Encoder, ...]
    weights: tuple[float, ...]

    @property
    def name(self) -> str:
        """The canonical ``concat:`` spec."""
        return self.spec

    def identity(self) -> dict[str, Any]:
        """Every part's identity with its weight, and the standardisation."""
        return {
            "kind": CONCAT_KIND,
            "scaling": "block-unit-total-variance",
            "parts": [{"weight": w, "identity": p.identity()} for p, w in zip(self.parts, self.weights)],
        }

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, sum of part widths) float32: each part's block standardised and weighted."""
        info = {"part_of": self.spec}
        blocks = [cached_encoding(part, smiles, info, progress=progress).values for part in self.parts]
        return concat_blocks(blocks, self.weights)


def concat_blocks(blocks: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """``[sqrt(w_i) * (B_i - mean) / sqrt(total variance of B_i)]`` side by side (float32); a
    constant block stays zero."""
    out = []
    for block, weight in zip(blocks, weights):
        centred = np.asarray(block, dtype=np.float64) - np.mean(block, axis=0)
        total = float(np.sum(np.var(centred, axis=0)))
        out.append(centred * (np.sqrt(weight / total) if total > 0 else 0.0))
    stacked: np.ndarray = np.hstack(out).astype(np.float32)
    return stacked
