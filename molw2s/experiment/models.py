"""The one resolver of the model names a config uses, for every driver (``run``,
``finetune``, ``multicap``).

A name is a member of the configured family (``strong``, ``strong@500`` for a snapshot),
whose checkpoint lives under :meth:`RunSettings.resolved_family_run_dir`, or a spec string
of a registered model kind (:func:`molw2s.encoders.refs.parse_model_ref`: ``bert:DIR``, a
model directory, ``hf:DIR_OR_NAME``, ``ecfp4-2048``, ``maccs``, ...). A ``concat:`` spec's parts may be family
members too (``concat:strong+rdkit2d``): each part is resolved here. The family YAML is read once here and
handed to pretraining with the references.

A family with ``seeds`` has one replicate of each member per pretraining seed: a
resolution points the member names at one replicate's checkpoints (the first seed's unless
``seed`` is given), and :meth:`ResolvedModels.replicates` gives one resolution per seed;
the other names (featurisers, ``hf:`` models, ...) are the same in each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from molw2s.encoders.composite import concat_ref, split_concat
from molw2s.encoders.refs import UnknownModelSpec, model_transformer, parse_model_ref
from molw2s.encoders.spec import ModelRef
from molw2s.encoders.transformer import TransformerFiles, checkpoint_ref
from molw2s.errors import ConfigError
from molw2s.experiment.config import RunSettings
from molw2s.finetuning.model import check_freeze
from molw2s.pretraining.config import FamilyConfig, load_family_config
from molw2s.pretraining.family import family_models, replicate_dir


@dataclass(frozen=True)
class ResolvedModels:
    """Every model name of a run as a reference, with the family they may come from."""

    refs: dict[str, ModelRef]
    family: FamilyConfig | None
    family_path: Path | None
    models_dir: Path
    members: tuple[str, ...]
    """Family members (without ``@step``) some name refers to: what pretraining must train."""
    seed: int | None = None
    """The pretraining seed of the replicate the member names point at; None when the
    models depend on no replicate (no family, a family without ``seeds``, or no name
    refers to a member)."""

    def replicates(self) -> list[ResolvedModels]:
        """One resolution per pretraining seed of the family, the same names pointing at
        that replicate's members; ``[self]`` when the family has no ``seeds`` or no name
        refers to a member (every replicate would give the same models)."""
        if self.family is None or self.seed is None:
            return [self]
        return [
            _resolved(list(self.refs), self.family, self.family_path, self.models_dir, s) for s in self.family.seeds
        ]

    def replicate_dir(self, root: Path) -> Path:
        """Where this replicate keeps what ``root`` holds (cells, students):
        :func:`molw2s.pretraining.family.replicate_dir`, ``root`` without a family."""
        return root if self.family is None else replicate_dir(root, self.family, self.seed)

    def checkpoints(self) -> dict[str, Path]:
        """Checkpoint directory per name, for the names that are ``bert:`` checkpoints (molw2s
        tokenizers, whose vocabulary coverage a run reports)."""
        return {name: ref.path for name, ref in self.refs.items() if ref.is_checkpoint and ref.path is not None}

    def trained_checkpoint(self, name: str, role: str) -> Path:
        """The directory of :meth:`trained_transformer`."""
        return self.trained_transformer(name, role).path

    def trained_transformer(self, name: str, role: str) -> TransformerFiles:
        """The files of the transformer ``name`` refers to, which must exist already (a
        ConfigError naming ``role``, or the command that trains a family member)."""
        files = model_transformer(self.refs[name], role)
        path = files.path
        if self.refs[name].is_checkpoint and not (path / "model.safetensors").is_file():
            if self.family is not None and name.split("@")[0] in self.members:
                raise ConfigError(
                    f"model {name!r} of family {self.family_path} is not trained yet ({path}): "
                    f"run `molw2s pretrain {self.family_path} --run-dir {self.models_dir}` first"
                )
            raise ConfigError(f"model {name!r}: {path} is not a model directory (no model.safetensors)")
        return files

    def layer_count(self, name: str) -> int | None:
        """Transformer layers of model ``name``, known before any training: a family
        member's configured size, else its ``config.json``; None for models without layers."""
        ref = self.refs[name]
        if not ref.is_transformer:
            return None
        member = name.split("@")[0]
        if self.family is not None and member in self.members:
            return next(m.model.num_layers for m in self.family.members if m.name == member)
        return model_transformer(ref, name).n_layers()

    def check_layer(self, name: str, layer: int, key: str) -> None:
        """A ConfigError naming ``key`` when ``layer`` (0 the embeddings, -1 the last) is
        outside model ``name``'s layers; checked before any pretraining or embedding."""
        n = self.layer_count(name)
        if n is not None and not -(n + 1) <= layer <= n:
            raise ConfigError(
                f"{key}: layer {layer} is out of range for model {name!r}, which has {n} transformer "
                f"layer(s) (0 = the embeddings, -1 = the last; from {-(n + 1)} to {n})"
            )

    def check_freeze(self, name: str, blocks: int, key: str) -> None:
        """A ConfigError naming ``key`` when freezing ``blocks`` of model ``name`` leaves no
        layer to train (:func:`molw2s.finetuning.model.check_freeze`), before any work."""
        n = self.layer_count(name)
        if n is not None:
            check_freeze(blocks, n, key)


def resolve_models(names: Sequence[str], settings: RunSettings, *, seed: int | None = None) -> ResolvedModels:
    """References of ``names``: family members become their checkpoints under
    ``settings.resolved_family_run_dir()`` (in the replicate of pretraining seed ``seed``;
    default the family's first seed), other names are parsed as model specs; an unknown
    name fails here, before any heavy work."""
    family = load_family_config(settings.family) if settings.family is not None else None
    if family is not None and seed is None:
        seed = family.replicates()[0]
    elif seed is not None and (family is None or seed not in family.seeds):
        seeds = family.seeds if family is not None else "no family"
        raise ConfigError(f"pretraining seed {seed} is not one of the family's seeds ({seeds})")
    return _resolved(names, family, settings.family, settings.resolved_family_run_dir(), seed)


def _resolved(
    names: Sequence[str], family: FamilyConfig | None, family_path: Path | None, models_dir: Path, seed: int | None
) -> ResolvedModels:
    """:func:`resolve_models` for a loaded family (or none) and one replicate ``seed``."""
    members = family_models(family, models_dir, seed) if family is not None else {}
    refs = {name: _resolve(name, members) for name in names}
    parts = [part for name in names for part, _ in split_concat(name) or [(name, 1.0)]]
    used = sorted({part.split("@")[0] for part in parts if part in members})
    return ResolvedModels(refs, family, family_path, models_dir, tuple(used), seed if used else None)


def _resolve(name: str, members: dict[str, Path]) -> ModelRef:
    """A family member's checkpoint, else the model spec ``name`` is (a spec that a kind
    recognises but rejects, e.g. a missing ``hf:`` model, keeps its kind's message); a
    ``concat:`` spec with each part resolved so."""
    if (parts := split_concat(name)) is not None:
        return concat_ref([(_resolve(part, members), weight) for part, weight in parts])
    if name in members:
        return checkpoint_ref(members[name])
    try:
        return parse_model_ref(name)
    except UnknownModelSpec as exc:
        known = f"; family members: {', '.join(members)}" if members else "; no family is configured"
        raise ConfigError(f"model {name!r} is neither a model spec nor a member of the family ({exc}){known}") from None
