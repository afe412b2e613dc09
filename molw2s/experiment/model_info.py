"""What each weak model of a run is: its kind, the independent source it comes from, its
size and training where known, and a short description for reports and figures.

Names are those of ``molw2s run``'s weak models: family members (``weak_s``, snapshots
``weak_s@200``), model specs (``bert:DIR``, ``hf:NAME``, ``ecfp4-2048``, ``concat:...``),
their ``expand`` variants (``NAME|layer=L``, ``NAME|pooling=P``) and the controlled models
(``ctrl:subspace=K``, ``ctrl:noise=S``, ``ctrl:mix=SPEC@W``).

The ``source`` column says which models are *not* independent evidence: the layer and
pooling variants of a transformer share its checkpoint's source (one pretrained model seen
several ways), a snapshot is its own checkpoint and hence its own source, a featuriser's
source is its spec, and every controlled model's source is ``controlled`` (they are all
made from the strong representation).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from molw2s.chem.descriptors import descriptor_names
from molw2s.encoders.chemprop_mpnn import CHEMPROP_KIND
from molw2s.encoders.composite import CONCAT_KIND, split_concat
from molw2s.encoders.featurisers import FEATURISER_KIND, featuriser_encoder
from molw2s.encoders.fingerprints import ECFPEncoder, MACCSEncoder
from molw2s.encoders.molfeat_calc import MOLFEAT_KIND
from molw2s.encoders.molfeat_calc import PREFIX as MOLFEAT_PREFIX
from molw2s.encoders.refs import parse_model_ref
from molw2s.encoders.spec import HF_KIND, ModelRef
from molw2s.encoders.table import TABLE_KIND
from molw2s.encoders.transformer import checkpoint_ref
from molw2s.experiment.models import ResolvedModels
from molw2s.io import read_manifest, verify_dir
from molw2s.pretraining.family import ModelRow, collect_results, family_models

ModelKindName = Literal["transformer", "fingerprint", "descriptor", "composite", "controlled", "other"]
#: the prefix of the controlled models' names (:class:`molw2s.experiment.config.ControlledFamily`)
CONTROLLED_PREFIX = "ctrl:"
#: the source of every controlled model: the strong representation, never independent evidence
CONTROLLED_SOURCE = "controlled"
#: the columns of :func:`describe_models`, in order
COLUMNS = ("weak", "kind", "source", "layers", "hidden", "pretrain_steps", "params", "mlm_acc", "dim", "description")
_INT_COLUMNS = ("layers", "hidden", "pretrain_steps", "params", "dim")


@dataclass(frozen=True)
class ModelInfo:
    """One row of :func:`describe_models`; None where a value is unknown or not applicable."""

    weak: str
    kind: ModelKindName
    source: str
    description: str
    layers: int | None = None
    hidden: int | None = None
    pretrain_steps: int | None = None
    params: int | None = None
    """Encoder parameters (heads excluded) of a trained family member."""
    mlm_acc: float | None = None
    """Held-out masked-token accuracy recorded when the checkpoint was exported."""
    dim: int | None = None
    """Width of the representation the heads see."""


def describe_models(names: Sequence[str], resolved: ResolvedModels, *, strong: str | None = None) -> pd.DataFrame:
    """One row per name of ``names`` (weak models as ``molw2s run`` names them) with the
    columns :data:`COLUMNS` (integer columns nullable, ``<NA>`` where unknown). Models are
    looked up in ``resolved`` (else in its family, else parsed as specs); ``strong``, the
    strong model's name, gives the width of the controlled models built from it. Reads
    only small files: configs, manifests and safetensors headers (no model is loaded)."""
    describer = _Describer(resolved, strong)
    frame: pd.DataFrame = pd.DataFrame([asdict(describer.describe(name)) for name in names], columns=list(COLUMNS))
    for col in _INT_COLUMNS:
        frame[col] = frame[col].astype("Int64")
    frame["mlm_acc"] = frame["mlm_acc"].astype(float)
    return frame


def describe_names(names: Sequence[str]) -> pd.DataFrame:
    """Kind and source from the names alone, for cells evaluated without the run's models
    (e.g. a synthetic family): ``ctrl:*`` names are controlled, a ``NAME|layer=L`` or
    ``NAME|pooling=P`` variant shares NAME's source, any other name is its own source of
    kind ``other``. The columns of :func:`describe_models`."""
    rows = [
        ModelInfo(name, "controlled", CONTROLLED_SOURCE, name)
        if name.startswith(CONTROLLED_PREFIX)
        else ModelInfo(name, "other", name.partition("|")[0], name)
        for name in names
    ]
    frame: pd.DataFrame = pd.DataFrame([asdict(row) for row in rows], columns=list(COLUMNS))
    return frame


class _Describer:
    """The lookups :func:`describe_models` shares across names (the family's results are
    read once; ``sources`` gives each distinct reference the first name that used it)."""

    def __init__(self, resolved: ResolvedModels, strong: str | None) -> None:
        self.resolved = resolved
        family = resolved.family
        self.family_paths = family_models(family, resolved.models_dir) if family is not None else {}
        self.family_rows: dict[str, ModelRow] = (
            {row.name: row for row in collect_results(family, resolved.models_dir).rows} if family is not None else {}
        )
        self.sources: dict[str, str] = {}
        self.strong_dim = self.describe(strong).dim if strong is not None else None

    def describe(self, name: str) -> ModelInfo:
        if name.startswith(CONTROLLED_PREFIX):
            return self._controlled(name)
        base, _, variant = name.partition("|")
        info = self._model(base)
        if not variant:
            return info
        key, _, value = variant.partition("=")
        if key == "layer":
            how = "layer 0 (the embeddings)" if value == "0" else f"layer {value}"
        else:
            how = f"{value} pooling"
        return replace(info, weak=name, description=f"{info.description}, {how}")

    def _ref(self, name: str) -> ModelRef:
        """``name``'s reference: resolved already, a family member's checkpoint, or a spec."""
        if name in self.resolved.refs:
            return self.resolved.refs[name]
        if name in self.family_paths:
            return checkpoint_ref(self.family_paths[name])
        return parse_model_ref(name)

    def _model(self, name: str) -> ModelInfo:
        ref = self._ref(name)
        source = self.sources.setdefault(ref.spec, name)
        if name in self.family_rows:
            return self._member(name, source)
        if ref.is_transformer:
            return _checkpoint(name, ref, source)
        if ref.kind == FEATURISER_KIND:
            return _featuriser(name, ref.spec)
        if ref.kind == MOLFEAT_KIND:
            calculator = ref.spec[len(MOLFEAT_PREFIX) :]
            kind: ModelKindName = "descriptor" if "desc" in calculator or "mordred" in calculator else "fingerprint"
            return ModelInfo(name, kind, ref.spec, f"molfeat calculator {calculator}")
        if ref.kind == CONCAT_KIND:
            return self._concat(name, ref)
        what = {TABLE_KIND: "precomputed features", CHEMPROP_KIND: "Chemprop MPNN"}.get(ref.kind, ref.kind)
        return ModelInfo(name, "other", source, f"{what} {ref.path or ref.spec}")

    def _member(self, name: str, source: str) -> ModelInfo:
        """A family member (or snapshot): its configured size and steps, its recorded
        steps, parameters and held-out MLM accuracy once trained."""
        assert self.resolved.family is not None  # family_rows is empty without a family
        member_name, _, step = name.partition("@")
        member = self.resolved.family.member(member_name)
        row = self.family_rows[name]
        trained = row.status != "not trained"
        steps = row.steps if trained and row.steps is not None else int(step or member.steps)
        acc = row.metrics.get("mlm_accuracy") if trained else None
        size = member.model
        text = f"MolBERT {_size_text(size.num_layers, size.hidden_size)}, {steps} steps"
        text += f", MLM acc {acc:.2f}" if acc is not None else ("" if trained else " (not trained yet)")
        return ModelInfo(
            name,
            "transformer",
            source,
            text,
            layers=size.num_layers,
            hidden=size.hidden_size,
            pretrain_steps=steps,
            params=row.n_params if trained else None,
            mlm_acc=acc,
            dim=size.hidden_size,
        )

    def _concat(self, name: str, ref: ModelRef) -> ModelInfo:
        """The parts' descriptions; the width is the sum of the parts' when all are known."""
        parts = split_concat(name) or []
        infos = [self._model(part) for part, _ in parts]
        dims = [info.dim for info in infos]
        text = " + ".join(part + ("" if weight == 1.0 else f" (weight {weight:g})") for part, weight in parts)
        total = None if any(d is None for d in dims) else sum(d for d in dims if d is not None)
        return ModelInfo(name, "composite", ref.spec, f"concatenation of {text}", dim=total)

    def _controlled(self, name: str) -> ModelInfo:
        key, _, value = name[len(CONTROLLED_PREFIX) :].partition("=")
        dim: int | None
        if key == "subspace":
            text, dim = f"random {value}-d subspace of the strong representation", int(value)
        elif key == "noise":
            text, dim = f"strong representation + Gaussian noise of {value} x its feature RMS", self.strong_dim
        elif key == "mix":
            spec, _, weight = value.rpartition("@")
            other = self._model(spec).dim
            text = f"strong representation mixed with {spec} (weight {weight})"
            dim = None if other is None or self.strong_dim is None else self.strong_dim + other
        else:
            text, dim = name, None
        return ModelInfo(name, "controlled", CONTROLLED_SOURCE, text, dim=dim)


def _checkpoint(name: str, ref: ModelRef, source: str) -> ModelInfo:
    """A ``bert:`` or ``hf:`` model outside the family: size from its ``config.json``, steps
    and MLM accuracy from its manifest when it has a verified one (molw2s exports)."""
    path = ref.path
    config = _read_json(path / "config.json") if path is not None else {}
    meta = read_manifest(path) if path is not None and verify_dir(path) is None else {}
    layers, hidden = config.get("num_hidden_layers"), config.get("hidden_size")
    steps, acc = meta.get("step"), meta.get("metrics", {}).get("mlm_accuracy")
    what = "Hugging Face encoder" if ref.kind == HF_KIND else "BERT checkpoint"
    text = f"{what} {path if path is not None else ref.spec}"
    text += f", {_size_text(layers, hidden)}" if layers is not None and hidden is not None else ""
    text += f", {steps} steps" if steps is not None else ""
    text += f", MLM acc {acc:.2f}" if acc is not None else ""
    return ModelInfo(
        name, "transformer", source, text, layers=layers, hidden=hidden, pretrain_steps=steps, mlm_acc=acc, dim=hidden
    )


def _featuriser(name: str, spec: str) -> ModelInfo:
    """ECFP and MACCS are fingerprints, RDKit 2D descriptors descriptors; the spec is the source."""
    encoder = featuriser_encoder(spec)
    if isinstance(encoder, ECFPEncoder):
        bits = f"counts in {encoder.nbits} bins" if encoder.counts else f"{encoder.nbits} bits"
        return ModelInfo(name, "fingerprint", spec, f"ECFP{2 * encoder.radius} {bits}", dim=encoder.nbits)
    if isinstance(encoder, MACCSEncoder):
        return ModelInfo(name, "fingerprint", spec, f"MACCS keys ({encoder.width} bits)", dim=encoder.width)
    n = len(descriptor_names())
    scale = "raw" if spec.lower().endswith("-raw") else "signed log"
    return ModelInfo(name, "descriptor", spec, f"RDKit 2D descriptors ({n}, {scale})", dim=n)


def _size_text(layers: int, hidden: int) -> str:
    """``2 layers x 64`` (``1 layer x 32``)."""
    return f"{layers} layer{'' if layers == 1 else 's'} x {hidden}"


def _read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; empty when there is no such file."""
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data
