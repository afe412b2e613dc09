"""Model references: one parser (a registry of kinds) and one resolver of family members,
with one ``family_run_dir`` default for ``run``, ``finetune`` and ``multicap``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from molw2s.encoders import refs
from molw2s.encoders.embed import embed_task
from molw2s.encoders.spec import EncoderOptions, ModelRef
from molw2s.encoders.transformer import TransformerEncoder
from molw2s.errors import ConfigError
from molw2s.experiment.config import (
    FinetuneConfig,
    MulticapConfig,
    load_experiment_config,
)
from molw2s.experiment.finetune import resolve_checkpoint
from molw2s.experiment.models import resolve_models

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _checkpoint_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"")  # enough to build (not to run) an encoder
    return path


def test_checkpoint_specs_parse_to_one_canonical_reference(tmp_path):
    model = _checkpoint_dir(tmp_path / "m")
    forms = [f"bert:{model}", f"BERT:{model}", f"  bert:{model} ", str(model)]
    parsed = {refs.parse_model_ref(form) for form in forms}
    assert parsed == {ModelRef("bert", f"bert:{model}", model)}
    (ref,) = parsed
    assert ref.is_checkpoint and ref.checkpoint("x") == model
    encoder = refs.model_encoder(ref, EncoderOptions(pooling="cls", layer=1))
    assert isinstance(encoder, TransformerEncoder) and (encoder.pooling, encoder.layer) == ("cls", 1)
    assert refs.model_encoder(ref).pooling == "mean"  # the one pooling default


def test_featurisers_and_unknown_specs():
    ref = refs.parse_model_ref("ECFP4-1024")
    assert ref.kind == "featuriser" and not ref.is_checkpoint and ref.spec == "ECFP4-1024"
    with pytest.raises(ConfigError, match="is a featuriser, not a transformer checkpoint"):
        ref.checkpoint("w2s.student=finetune")
    with pytest.raises(ConfigError, match=r"unknown encoder 'morgan'; use bert:PATH .*maccs"):
        refs.parse_model_ref("morgan")
    with pytest.raises(ConfigError, match="pooling"):
        EncoderOptions(pooling="max")  # type: ignore[arg-type]


@dataclass
class _ConstantEncoder:
    width: int

    @property
    def name(self) -> str:
        return f"const:{self.width}"

    def identity(self) -> dict[str, Any]:
        return {"kind": "const", "width": self.width}

    def encode(self, smiles: Any, *, progress: bool = False) -> np.ndarray:
        return np.ones((len(smiles), self.width), dtype=np.float32)


class _ConstantKind:
    """A kind as a follow-up would add one: ``const:N`` (N ones per molecule)."""

    name = "const"

    def parse(self, text: str) -> ModelRef | None:
        return ModelRef("const", text) if text.startswith("const:") else None

    def encoder(self, ref: ModelRef, options: EncoderOptions) -> _ConstantEncoder:
        return _ConstantEncoder(int(ref.spec.split(":")[1]))

    def describe(self) -> str:
        return "const:N"


def test_a_new_kind_is_one_registration(monkeypatch):
    monkeypatch.setattr(refs, "KINDS", list(refs.KINDS))
    refs.register_kind(_ConstantKind())
    with pytest.raises(ConfigError, match="registered already"):
        refs.register_kind(_ConstantKind())
    assert refs.parse_model_ref("const:3") == ModelRef("const", "const:3")
    assert embed_task("const:3", "nci_logp").shape[1] == 3  # embedded and cached like any encoder
    with pytest.raises(ConfigError, match="const:N"):
        refs.parse_model_ref("morgan")


def test_members_resolve_under_one_family_run_dir_default(tmp_path):
    config = load_experiment_config(CONFIGS / "quickstart.yaml", [f"run_dir={tmp_path / 'run'}"])
    models = resolve_models(["strong", config.strong, *config.weak], config)
    root = tmp_path / "run" / "models"
    assert models.models_dir == root and models.family is not None and models.family.name == "quickstart"
    assert models.refs["strong"] == ModelRef("bert", f"bert:{root / 'strong' / 'final'}", root / "strong" / "final")
    assert models.refs[config.strong].spec == f"concat:bert:{root / 'strong' / 'final'}+ecfp2-256-counts"
    assert models.refs["weak_s@200"].path == root / "weak_s" / "snapshots" / "step-00000200"
    assert models.refs["ecfp4-1024"] == ModelRef("featuriser", "ecfp4-1024")
    assert set(models.members) == {"weak_xs", "weak_s", "weak_m", "strong"}
    assert set(models.checkpoints()) == {n for n in models.refs if n.split("@")[0] in models.members}
    common = {"name": "x", "run_dir": str(tmp_path / "run"), "tasks": ["nci_logp"], "family": str(config.family)}
    finetune = FinetuneConfig(**common, model="strong")
    multicap = MulticapConfig(**common, strong="strong", weak=["maccs"])
    assert finetune.resolved_family_run_dir() == multicap.resolved_family_run_dir() == root


def test_finetune_names_an_untrained_member_and_refuses_featurisers(tmp_path):
    family = CONFIGS / "family_quickstart.yaml"
    common = {"name": "x", "run_dir": str(tmp_path / "run"), "tasks": ["nci_logp"], "family": str(family)}
    with pytest.raises(ConfigError, match=r"not trained yet .*molw2s pretrain .* --run-dir .*models"):
        resolve_checkpoint(FinetuneConfig(**common, model="strong@500"))
    with pytest.raises(ConfigError, match="is a featuriser"):
        resolve_checkpoint(FinetuneConfig(**common, model="maccs"))
    with pytest.raises(ConfigError, match="nor a member of the family.*family members: weak_xs@100"):
        resolve_checkpoint(FinetuneConfig(**common, model="nope"))
    model = _checkpoint_dir(tmp_path / "any")
    assert resolve_checkpoint(FinetuneConfig(**common, model=f"bert:{model}")) == model


def test_the_family_yaml_is_read_once_per_run(tmp_path, monkeypatch):
    """run_experiment resolves the models once and pretrains from the family it read."""
    from molw2s.experiment import models as models_module
    from molw2s.experiment import runner
    from molw2s.pretraining import family as family_module

    config = load_experiment_config(CONFIGS / "quickstart.yaml", [f"run_dir={tmp_path / 'run'}"])
    reads, trained = [], []
    real_load = models_module.load_family_config
    monkeypatch.setattr(models_module, "load_family_config", lambda path: reads.append(path) or real_load(path))

    def pretrain(family, run_dir, *, members, **kwargs):
        trained.append((family.name, run_dir, members))
        raise RuntimeError("stop before any training")

    monkeypatch.setattr(family_module, "pretrain_family", pretrain)
    with pytest.raises(RuntimeError, match="stop before"):
        runner.run_experiment(config, progress=False, tracking="none")
    assert reads == [config.family]
    assert trained == [("quickstart", tmp_path / "run" / "models", ["strong", "weak_m", "weak_s", "weak_xs"])]
