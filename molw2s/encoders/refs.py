"""The one parser of model spec strings: a registry of model kinds.

Each kind (:class:`molw2s.encoders.spec.ModelKind`) says how its spec strings parse into a
:class:`~molw2s.encoders.spec.ModelRef` and how a reference becomes an encoder, whose
``identity()`` keys the embedding cache. Kinds are tried in registration order, the
first that recognises a spec wins. A new kind is one module implementing the protocol
plus one entry in :data:`KINDS` (or a :func:`register_kind` call).

Family member names (``strong``, ``strong@500``) are resolved one layer up, by
:mod:`molw2s.experiment.models`, which knows the pretraining configs.
"""

from __future__ import annotations

from molw2s.encoders.chemprop_mpnn import ChempropKind
from molw2s.encoders.composite import ConcatKind
from molw2s.encoders.featurisers import FeaturiserKind
from molw2s.encoders.hf import HFKind
from molw2s.encoders.molfeat_calc import MolfeatKind
from molw2s.encoders.spec import Encoder, EncoderOptions, ModelKind, ModelRef
from molw2s.encoders.table import TableKind
from molw2s.encoders.transformer import CheckpointKind, TransformerFiles, TransformerKind
from molw2s.errors import ConfigError

#: the registered kinds, in the order they are tried
KINDS: list[ModelKind] = [
    CheckpointKind(),
    FeaturiserKind(),
    HFKind(),
    TableKind(),
    MolfeatKind(),
    ChempropKind(),
    ConcatKind(lambda spec: parse_model_ref(spec), lambda ref, options: model_encoder(ref, options)),
]


def register_kind(kind: ModelKind) -> None:
    """Add ``kind`` (tried after the kinds already registered); its name must be new."""
    if any(k.name == kind.name for k in KINDS):
        raise ConfigError(f"model kind {kind.name!r} is registered already")
    KINDS.append(kind)


class UnknownModelSpec(ConfigError):
    """No registered kind recognises a spec (a kind that recognises but rejects one raises
    a plain ConfigError: a malformed option, a missing model)."""


def parse_model_ref(spec: str) -> ModelRef:
    """The reference ``spec`` names; an :class:`UnknownModelSpec` listing every kind's forms
    when none recognises it."""
    text = spec.strip()
    for kind in KINDS:
        ref = kind.parse(text)
        if ref is not None:
            return ref
    forms = ", ".join(kind.describe() for kind in KINDS)
    raise UnknownModelSpec(f"unknown encoder {spec!r}; use {forms}")


def model_encoder(ref: ModelRef, options: EncoderOptions | None = None) -> Encoder:
    """The encoder of ``ref`` built by its kind with ``options`` (default options)."""
    for kind in KINDS:
        if kind.name == ref.kind:
            return kind.encoder(ref, options or EncoderOptions())
    raise ConfigError(f"model {ref.spec!r}: no registered kind {ref.kind!r}")


def model_transformer(ref: ModelRef, role: str) -> TransformerFiles:
    """The transformer files of ``ref``, which ``role`` finetunes; a ConfigError naming
    ``role`` when ``ref`` is not a transformer."""
    ref.checkpoint(role)  # the ConfigError of a featuriser or any other kind
    for kind in KINDS:
        if kind.name == ref.kind and isinstance(kind, TransformerKind):
            return kind.files(ref)
    raise ConfigError(f"{role}: model {ref.spec!r} of kind {ref.kind!r} has no transformer files")
