"""Any Hugging Face encoder (``hf:DIR_OR_NAME``): a tiny RoBERTa and a tiny T5 built here
from configs, with their own fast tokenizers. Embeddings equal a direct ``transformers``
forward pass, the cache follows the weights, a missing model or a bad option is a clear
error, ``bert:DIR`` refuses a RoBERTa, the models work as weak and strong models of a run
and finetune. Nothing downloads."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from molw2s.chem.smiles import canonicalize
from molw2s.data.tasks import load_task
from molw2s.encoders.embed import compute_task_embedding, parse_encoder_spec
from molw2s.encoders.hf import HFFiles, spell
from molw2s.encoders.refs import model_transformer, parse_model_ref
from molw2s.encoders.spec import ModelRef
from molw2s.errors import ConfigError
from molw2s.experiment.config import FinetuneConfig, load_experiment_config
from molw2s.experiment.finetune import resolve_transformer
from molw2s.experiment.runner import run_experiment
from molw2s.finetuning.config import FinetuneSettings
from molw2s.finetuning.model import encoder_blocks
from molw2s.finetuning.trainer import LabelledSmiles, finetune_regressor

RAW = ["OCC", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C[N+](C)(C)C", "ClCCBr", "CCCCCCCCCCO", "N#Cc1ccccc1", "CC"]
SMILES = [canonicalize(s) for s in RAW]


@pytest.fixture(scope="module")
def models(tmp_path_factory, make_tiny_hf_model):
    """``{"roberta": dir, "t5": dir}``: tiny encoders whose vocabularies cover :data:`SMILES`."""
    root = tmp_path_factory.mktemp("hf")
    return {arch: make_tiny_hf_model(root / arch, SMILES, arch=arch) for arch in ("roberta", "t5")}


def _direct(path: Path, arch: str, smiles: list[str], layer: int, pooling: str) -> np.ndarray:
    """Pooled hidden states from transformers alone: AutoTokenizer, AutoModel (T5EncoderModel)."""
    from transformers import AutoModel, AutoTokenizer, T5EncoderModel

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = (T5EncoderModel if arch == "t5" else AutoModel).from_pretrained(str(path)).eval()
    batch = tokenizer(smiles, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states[layer]
    if pooling == "cls":
        return hidden[:, 0].numpy()
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return ((hidden * mask).sum(1) / mask.sum(1)).numpy()


@pytest.mark.parametrize("arch", ["roberta", "t5"])
def test_embeddings_equal_a_direct_transformers_forward_pass(models, arch):
    for pooling in ("cls", "mean"):
        for layer in (-1, 1):  # the last and a middle layer (hidden_states index)
            # batches of 3 in length order: several batches, padded, put back in input order
            encoder = parse_encoder_spec(f"hf:{models[arch]}", pooling=pooling, layer=layer, batch_size=3)
            got = encoder.encode(SMILES)
            np.testing.assert_allclose(got, _direct(models[arch], arch, SMILES, layer, pooling), atol=2e-5)
            assert encoder.last_counts == {"unk_tokens": 0, "truncated": 0}
    first = parse_encoder_spec(f"hf:{models[arch]}", layer=0).encode(SMILES)
    np.testing.assert_allclose(first, _direct(models[arch], arch, SMILES, 0, "mean"), atol=2e-5)


def test_spelling_bf16_truncation_and_input_order(models):
    spec = f"hf:{models['roberta']}"
    exact = parse_encoder_spec(spec).encode(SMILES)
    as_written = parse_encoder_spec(spec).encode(RAW)  # canonicalised first (default smiles=canonical)
    np.testing.assert_allclose(as_written, exact, atol=1e-6)
    raw = parse_encoder_spec(f"{spec}?smiles=as_is").encode(RAW)
    assert not np.allclose(raw[0], exact[0])  # OCC is read as written
    bf16 = parse_encoder_spec(spec, precision="bfloat16")
    np.testing.assert_allclose(bf16.encode(SMILES), exact, atol=0.05, rtol=0.05)
    assert bf16.identity()["precision"] == "bfloat16" and "precision" not in parse_encoder_spec(spec).identity()
    long = ["C" * 100]
    encoder = parse_encoder_spec(spec)
    assert encoder.encode(long).shape == (1, 16) and encoder.last_counts["truncated"] == 1  # 64 tokens at most
    assert spell(["c1ccccc1"], "kekule") == ["C1=CC=CC=C1"]


def test_selfies_spelling_and_its_missing_package(models, monkeypatch):
    selfies = pytest.importorskip("selfies")
    assert spell(["OCC"], "selfies") == [selfies.encoder("CCO")] == ["[C][C][O]"]
    assert parse_model_ref(f"hf:{models['roberta']}?smiles=selfies").spec.endswith("?smiles=selfies")
    monkeypatch.setitem(sys.modules, "selfies", None)
    with pytest.raises(ConfigError, match=r"smiles=selfies needs the selfies package: pip install 'molw2s\[selfies\]'"):
        parse_model_ref(f"hf:{models['roberta']}?smiles=selfies")


def test_cache_key_follows_the_weights_and_the_options(models, make_tiny_hf_model, tmp_path):
    path = make_tiny_hf_model(tmp_path / "m", SMILES, arch="roberta", seed=0)
    csv = tmp_path / "task.csv"
    csv.write_text("smiles,y\n" + "".join(f"{s},{i}\n" for i, s in enumerate(SMILES)))
    task = load_task(str(csv))
    encoder = parse_encoder_spec(f"hf:{path}")
    before = compute_task_embedding(encoder, task)
    again = compute_task_embedding(parse_encoder_spec(f"hf:{path}"), task)
    assert again.from_cache and again.path == before.path
    kekule = parse_encoder_spec(f"hf:{path}?smiles=kekule").identity()
    assert kekule != encoder.identity() and kekule["smiles"] == "kekule"
    make_tiny_hf_model(path, SMILES, arch="roberta", seed=1)  # new weights, same directory
    after = compute_task_embedding(encoder, task)  # the same encoder notices the new files
    assert not after.from_cache and after.path != before.path
    assert not np.allclose(after.values, before.values)
    assert after.info["identity"]["files"]["model.safetensors"] != before.info["identity"]["files"]["model.safetensors"]


def test_bert_refuses_a_roberta_and_hf_reads_molw2s_checkpoints_alike(models, make_tiny_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match=r"model type 'roberta' is not BERT.*use hf:"):
        parse_encoder_spec(f"bert:{models['roberta']}").encode(SMILES)
    molw2s_dir = make_tiny_checkpoint(tmp_path / "bert", SMILES)
    np.testing.assert_allclose(
        parse_encoder_spec(f"hf:{molw2s_dir}", pooling="cls").encode(SMILES),
        parse_encoder_spec(f"bert:{molw2s_dir}", pooling="cls").encode(SMILES),
        atol=1e-6,
    )


def test_missing_models_bad_options_and_custom_code_are_clear_errors(models, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ConfigError, match=r"no model 'acme/none' in the Hugging Face cache .*hub.*"
                       r"huggingface-cli download acme/none.*snapshot_download\('acme/none'\)"):  # fmt: skip
        parse_model_ref("hf:acme/none")
    with pytest.raises(ConfigError, match=r"^hf:acme/none: no such local directory"):  # not "an unknown model name"
        resolve_transformer(
            FinetuneConfig(name="x", run_dir=str(tmp_path / "ft"), tasks=["nci_logp"], model="hf:acme/none")
        )
    # a model in the cache (the layout huggingface-cli download leaves) resolves to its snapshot, offline
    snapshot = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / "0123abc"
    shutil.copytree(models["roberta"], snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abc")
    assert parse_model_ref("hf:acme/tiny") == ModelRef("hf", "hf:acme/tiny", snapshot)
    np.testing.assert_allclose(
        parse_encoder_spec("hf:acme/tiny").encode(SMILES), parse_encoder_spec(f"hf:{models['roberta']}").encode(SMILES)
    )
    for bad, message in [
        (f"hf:{models['t5']}?smiles=inchi", "smiles must be one of"),
        (f"hf:{models['t5']}?pooling=cls", "bad option 'pooling=cls'"),
        (f"hf:{models['t5']}?trust_remote_code=yes", "trust_remote_code must be true or false"),
        ("hf:", "name a model directory"),
        (f"hf:{tmp_path}", "has no config.json"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_model_ref(bad)
    custom = tmp_path / "custom"
    shutil.copytree(models["roberta"], custom)
    config = json.loads((custom / "config.json").read_text())
    config.update(model_type="tiny_custom", auto_map={"AutoModel": "modeling_tiny.TinyModel"})
    (custom / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"'tiny_custom' needs the Python code .*\?trust_remote_code=true"):
        parse_encoder_spec(f"hf:{custom}").encode(SMILES)
    opted = parse_model_ref(f"HF:{custom}?trust_remote_code=TRUE&smiles=as_is")
    assert opted.spec == f"hf:{custom}?smiles=as_is&trust_remote_code=true" and opted.is_transformer
    files = model_transformer(opted, "test")
    assert isinstance(files, HFFiles) and files.trust_remote_code and files.spelling == "as_is"


def test_hf_models_as_weak_and_strong_models_of_a_run_with_a_finetuned_student(models, tmp_path):
    from rdkit.Chem import Descriptors, MolFromSmiles

    smiles = [s for s in SMILES if s != "CC"] * 9  # 63 rows
    csv = tmp_path / "task.csv"
    csv.write_text(
        "smiles,y\n" + "".join(f"{s},{Descriptors.MolWt(MolFromSmiles(s)) + i * 0.01}\n" for i, s in enumerate(smiles))
    )
    config = {
        "name": "hf_run",
        "run_dir": str(tmp_path / "run"),
        "strong": f"hf:{models['roberta']}",
        "weak": [f"hf:{models['t5']}", "maccs"],
        # 63 rows of the 7 molecules the tiny tokenizers know: kept as rows, not merged
        "tasks": [{"name": str(csv), "smiles_col": "smiles", "label_col": "y", "duplicates": "keep"}],
        "splits": {"seeds": [0], "min_weak": 10, "min_strong": 10, "min_test": 5},
        "expand": {"layers": [1], "poolings": ["cls"]},
        "w2s": {"student": "finetune", "finetune": {"epochs": 2, "batch_size": 8, "patience": None, "device": "cpu"}},
        "evaluation": {"n_boot": 20},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    results = run_experiment(load_experiment_config(tmp_path / "run.yaml"), progress=False)
    weak = {m["weak"] for m in results["tasks"]["task"]["weak_models"]}
    t5 = f"hf:{models['t5']}"
    assert weak == {t5, "maccs", f"{t5}|layer=1", f"{t5}|pooling=cls"}  # the expansion applies to hf: models
    cells = [json.loads(p.read_text()) for p in (tmp_path / "run" / "cells").rglob("*.json")]
    assert cells and all(np.isfinite(c["ft_err_sc"]) and np.isfinite(c["ft_err_w2s"]) for c in cells)


def test_finetuning_a_tiny_roberta_and_t5_with_their_own_tokenizers(models, tmp_path):
    y = np.array([len(s) for s in SMILES], dtype=float)
    train, valid = LabelledSmiles.of(SMILES * 3, np.tile(y, 3)), LabelledSmiles.of(SMILES[:4], y[:4])
    settings = FinetuneSettings(epochs=3, batch_size=8, lr=1e-3, patience=None, device="cpu", freeze=1)
    for arch in ("roberta", "t5"):
        files = model_transformer(parse_model_ref(f"hf:{models[arch]}"), "test")
        fitted = finetune_regressor(files, train, valid, settings, seed=0, state_dir=tmp_path / arch)
        original, _ = files.load()
        frozen, trained = encoder_blocks(fitted.model.encoder)[0], encoder_blocks(fitted.model.encoder)[-1]
        assert all(
            torch.equal(a, b)
            for a, b in zip(frozen.state_dict().values(), encoder_blocks(original)[0].state_dict().values())
        )
        assert not all(
            torch.equal(a, b)
            for a, b in zip(trained.state_dict().values(), encoder_blocks(original)[-1].state_dict().values())
        )
        pred = fitted.predict(SMILES)
        assert pred.shape == (len(SMILES),) and np.isfinite(pred).all() and fitted.best_epoch >= 1
    common = {"name": "x", "run_dir": str(tmp_path / "ft"), "tasks": ["nci_logp"]}
    assert resolve_transformer(FinetuneConfig(**common, model=f"hf:{models['t5']}")).n_layers() == 2
    with pytest.raises(ConfigError, match="freezing layers of hf: models of type 'Linear' is not supported"):
        encoder_blocks(torch.nn.Linear(2, 2))


def test_the_embed_command_and_the_adapters_take_hf_specs(models, tmp_path):
    from typer.testing import CliRunner

    from molw2s.cli import app
    from molw2s.interop.sklearn import MolW2SFeaturizer

    spec = f"hf:{models['t5']}"
    expected = parse_encoder_spec(spec, pooling="cls").encode(SMILES)
    np.testing.assert_allclose(MolW2SFeaturizer(spec, pooling="cls").fit_transform(SMILES), expected, atol=1e-6)
    csv = tmp_path / "task.csv"
    csv.write_text("smiles,y\n" + "".join(f"{s},{i}\n" for i, s in enumerate(SMILES)))
    out = tmp_path / "x.npy"
    result = CliRunner().invoke(
        app, ["embed", "-e", spec, "-t", str(csv), "--pooling", "cls", "-o", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert f"{spec} on task: {len(SMILES)} molecules x 16 features" in result.output
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)
    if importlib.util.find_spec("deepchem") is not None:  # CI installs the deepchem extra
        from molw2s.interop.deepchem import EncoderFeaturizer

        np.testing.assert_allclose(EncoderFeaturizer(spec).featurize(SMILES), parse_encoder_spec(spec).encode(SMILES))


def test_the_multicap_finetune_student_takes_an_hf_model(models, tmp_path):
    from molw2s.multicap.capability import Capability
    from molw2s.multicap.config import StudentConfig
    from molw2s.multicap.finetune_student import FinetuneSetup, FinetuneStudent

    smiles = SMILES * 4
    H = np.random.default_rng(0).standard_normal((len(smiles), 3))
    parts = np.arange(6), np.arange(6, 24), np.arange(24, len(smiles))
    caps = [
        Capability(name, H, H, np.array([f(s) for s in smiles], dtype=float), *parts, smiles)
        for name, f in (("length", len), ("carbons", lambda s: s.count("C")))
    ]
    config = StudentConfig(kind="finetune", finetune=FinetuneSettings(epochs=2, batch_size=8, patience=None))
    files = model_transformer(parse_model_ref(f"hf:{models['roberta']}"), "student.kind=finetune")
    student = FinetuneStudent(config, caps, FinetuneSetup(files, tmp_path)).fit(
        {c.name: (c.strong, c.y[c.strong]) for c in caps}
    )
    for cap in caps:
        assert np.isfinite(student.predict(cap.name, cap.test)).all()
    assert (tmp_path / f"{student.key}.json").is_file()
