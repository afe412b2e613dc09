"""chemprop v2 message-passing encoders as a model kind: ``chemprop:MODEL_FILE``.

The representation is chemprop's learned fingerprint, ``MPNN.fingerprint``: bond message
passing, aggregation over atoms and the model's batch norm. Two file layouts are read:

- a chemprop v2 model file (``chemprop train`` output ``model.pt``, or
  ``chemprop.models.utils.save_model``): ``hyper_parameters`` with ``message_passing``,
  ``agg`` and ``predictor`` entries and a ``state_dict``; the predictor is not used;
- a message-passing file, as the CheMeleon foundation checkpoint ``chemeleon_mp.pt`` is:
  the ``BondMessagePassing`` keyword arguments and its ``state_dict``; aggregated by the
  mean over atoms (as CheMeleon's own example does), without batch norm.

Molecules are featurised with chemprop's default ``SimpleMoleculeMolGraphFeaturizer``
(v2 atom and bond features); a model trained on other features is refused.

Trust: chemprop's own loader (``MPNN.load_from_file``) unpickles the file in full, which
can run any code in it. molw2s never does: it reads the file with torch's restricted
(``weights_only``) loader and allows, besides tensors and plain containers, only classes
(never functions) defined in chemprop and Lightning's ``AttributeDict``; the modules it
builds from the saved hyper-parameters must be chemprop ``nn.Module`` classes. A file that
needs any other global is refused, naming the globals. An optional extra: ``pip install 'molw2s[chemprop]'``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from molw2s.encoders.molbert_checkpoint import PLAIN_DICT_CLASSES
from molw2s.encoders.spec import EncoderOptions, ModelRef
from molw2s.errors import ConfigError, DataError
from molw2s.io import file_digest
from molw2s.progress import show_progress

CHEMPROP_KIND = "chemprop"
PREFIX = f"{CHEMPROP_KIND}:"
INSTALL = "pip install 'molw2s[chemprop]'"
#: globals a chemprop file may name besides torch's own: these modules' classes (and
#: Lightning's AttributeDict, read as a plain dict)
_ALLOWED_MODULES = ("chemprop.",)


class ChempropKind:
    """``chemprop:FILE`` (prefix in any case); the file must exist when parsed."""

    name = CHEMPROP_KIND

    def parse(self, text: str) -> ModelRef | None:
        """A chemprop reference with the canonical spec ``chemprop:<path>``."""
        if not text.lower().startswith(PREFIX):
            return None
        path = Path(text[len(PREFIX) :]).expanduser()
        if not path.is_file():
            raise ConfigError(f"encoder {text!r}: chemprop model file {path} not found")
        if importlib.util.find_spec("chemprop") is None:
            raise ConfigError(f"encoder {text!r} needs chemprop, an optional extra: {INSTALL}")
        return ModelRef(CHEMPROP_KIND, f"{PREFIX}{path}", path)

    def encoder(self, ref: ModelRef, options: EncoderOptions) -> ChempropEncoder:
        """The fingerprint encoder of the model file (``batch_size`` and ``device`` apply)."""
        assert ref.path is not None
        return ChempropEncoder(ref.path, batch_size=options.batch_size, device=options.device)

    def describe(self) -> str:
        """The spec form of chemprop models."""
        return "chemprop:MODEL_FILE"


@dataclass
class ChempropEncoder:
    """Learned fingerprints of a chemprop v2 file (loaded once per file version)."""

    path: Path
    batch_size: int = 64
    device: str = "auto"
    _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def name(self) -> str:
        """``chemprop:<path>``."""
        return f"{PREFIX}{self.path}"

    def identity(self) -> dict[str, Any]:
        """The file's sha256 and the chemprop version (its featuriser defines the inputs)."""
        from importlib.metadata import version

        return {"kind": CHEMPROP_KIND, "sha256": self._load()[0], "chemprop": version("chemprop")}

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, d) float32 fingerprints in the order of ``smiles``; a DataError names the row
        of the first SMILES that does not parse."""
        import torch
        from chemprop.data import BatchMolGraph
        from chemprop.featurizers import SimpleMoleculeMolGraphFeaturizer
        from tqdm.auto import tqdm

        from molw2s.chem.smiles import mol_from_smiles
        from molw2s.encoders.device import resolve_device

        _, modules = self._load()
        featurizer = SimpleMoleculeMolGraphFeaturizer()
        device = resolve_device(self.device)
        modules.to(device)
        graphs = []
        for row, text in enumerate(smiles):
            mol, reason = mol_from_smiles(text)
            if mol is None:
                raise DataError(f"invalid SMILES {text!r}: {reason}", row=row, column="smiles")
            graphs.append(featurizer(mol))
        out = []
        with torch.inference_mode():
            for start in tqdm(
                range(0, len(graphs), self.batch_size), desc=self.path.name, disable=not show_progress(progress)
            ):
                batch = BatchMolGraph(graphs[start : start + self.batch_size])
                batch.to(device)
                hidden = modules.message_passing(batch)
                out.append(modules.bn(modules.agg(hidden, batch.batch)).float().cpu().numpy())
        width = modules.message_passing.output_dim
        return np.concatenate(out) if out else np.zeros((0, width), dtype=np.float32)

    def _load(self) -> tuple[str, Any]:
        """(sha256, modules with message_passing, agg, bn), rebuilt when the file changes."""
        stat = self.path.stat()
        signature = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if self._loaded.get("signature") != signature:
            self._loaded.update(
                signature=signature, model=(file_digest(self.path, "sha256"), fingerprint_modules(self.path))
            )
        model: tuple[str, Any] = self._loaded["model"]
        return model


def fingerprint_modules(path: Path) -> Any:
    """A ``torch.nn.ModuleDict`` of ``message_passing``, ``agg`` and ``bn`` from a chemprop
    file (see the module docstring), in eval mode."""
    import torch
    from chemprop import nn
    from chemprop.featurizers import SimpleMoleculeMolGraphFeaturizer

    content = safe_load(path)
    if not isinstance(content, dict) or not {"hyper_parameters", "state_dict"} <= content.keys():
        raise DataError("not a chemprop v2 file: no hyper_parameters and state_dict", path=str(path))
    hparams, state = dict(content["hyper_parameters"]), content["state_dict"]
    if "message_passing" in hparams:  # a whole MPNN
        if any(k.startswith("X_d_transform") for k in state):
            raise DataError("the model takes extra molecular descriptors (X_d), which molw2s does not supply")
        parts = {key: _build(dict(hparams[key])) for key in ("message_passing", "agg")}
        width = parts["message_passing"].output_dim
        bn = torch.nn.BatchNorm1d(width) if hparams.get("batch_norm") else torch.nn.Identity()
        modules = torch.nn.ModuleDict({**parts, "bn": bn})
        own = {k: v for k, v in state.items() if k.split(".")[0] in ("message_passing", "agg", "bn")}
    else:  # message passing alone (CheMeleon)
        modules = torch.nn.ModuleDict(
            {
                "message_passing": nn.BondMessagePassing(**hparams),
                "agg": nn.MeanAggregation(),
                "bn": torch.nn.Identity(),
            }
        )
        own = {f"message_passing.{k}": v for k, v in state.items()}
    missing, unexpected = modules.load_state_dict(own, strict=False)
    if missing or unexpected:
        raise DataError(f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    featurizer = SimpleMoleculeMolGraphFeaturizer()
    message_passing: Any = modules["message_passing"]
    if message_passing.W_i.in_features != featurizer.atom_fdim + featurizer.bond_fdim:
        raise DataError(
            "the model was trained on other atom / bond features than chemprop's default featuriser "
            f"(atom {featurizer.atom_fdim} + bond {featurizer.bond_fdim} inputs), the only one molw2s supplies",
            path=str(path),
        )
    return modules.eval()


def _build(hparams: dict[str, Any]) -> Any:
    """An ``nn`` module from chemprop's saved hyper-parameters (``cls`` plus its keywords);
    ``cls`` must be a chemprop ``torch.nn.Module`` class."""
    import torch

    cls = hparams.pop("cls")
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module) and cls.__module__.startswith(_ALLOWED_MODULES)):
        raise DataError(f"the saved hyper-parameters name {cls!r}, not a chemprop module class")
    return cls(**hparams)


def safe_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` allowing chemprop's classes (see the module
    docstring); a DataError naming any other global the file needs."""
    import torch

    names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    chemprop_classes = {n: _global(n) for n in names if n.startswith(_ALLOWED_MODULES)}
    refused = [n for n in names if n not in chemprop_classes and n not in PLAIN_DICT_CLASSES]
    refused += [n for n, obj in chemprop_classes.items() if not isinstance(obj, type)]  # a function: callable
    if refused:
        raise DataError(
            f"the file needs globals other than chemprop classes ({refused[:5]}), which would need full unpickling; "
            "molw2s does not unpickle it (see docs/interoperability.md, chemprop)",
            path=str(path),
        )
    allowed: list[Any] = list(chemprop_classes.values())
    allowed += [(dict, name) for name in PLAIN_DICT_CLASSES]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def _global(name: str) -> Any:
    """The object a pickle global ``module.qualname`` names (the module imported)."""
    module, _, qualname = name.rpartition(".")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj
