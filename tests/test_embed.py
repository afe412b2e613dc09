"""Encoders behind one interface: spec parsing, fingerprints vs RDKit, pooled transformer
embeddings vs a one-molecule-at-a-time reference, length sorting, and the cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from molw2s.encoders.embed import compute_task_embedding, embed_task, parse_encoder_spec
from molw2s.encoders.fingerprints import ECFPEncoder, MACCSEncoder, RDKitDescriptorEncoder, signed_log1p
from molw2s.encoders.model import MolBertForPretraining, make_molbert_config
from molw2s.encoders.model_files import load_pretrained, save_model
from molw2s.encoders.model_size import ModelSizeConfig
from molw2s.encoders.tokenizer import build_vocab, make_tokenizer
from molw2s.encoders.transformer import TransformerEncoder
from molw2s.errors import ConfigError, DataError

SMILES = ["CCO", "c1ccccc1C(=O)O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "N", "C1CC1Br", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised checkpoint (dropout on, to catch a missing eval())."""
    path = tmp_path_factory.mktemp("tiny_model")
    tok = make_tokenizer(build_vocab(SMILES).token_to_id, max_length=64)
    torch.manual_seed(0)
    size = ModelSizeConfig(num_layers=2, hidden_size=16, num_heads=2, intermediate_size=32)
    config = make_molbert_config(size, vocab_size=len(tok), max_length=64, pad_token_id=tok.pad_token_id, physchem=None)
    save_model(MolBertForPretraining(config), tok, path)
    return path


def test_spec_strings_pick_the_right_encoder(model_dir: Path) -> None:
    assert parse_encoder_spec("ecfp4-2048") == ECFPEncoder(2, 2048)
    assert parse_encoder_spec("ECFP6-1024-counts") == ECFPEncoder(3, 1024, counts=True)
    assert parse_encoder_spec("ecfp2") == ECFPEncoder(1, 2048)
    assert parse_encoder_spec("ecfp:radius=3,nbits=512") == ECFPEncoder(3, 512)
    assert parse_encoder_spec("maccs") == MACCSEncoder()
    assert parse_encoder_spec("rdkit2d") == RDKitDescriptorEncoder(raw=False)
    assert parse_encoder_spec("rdkit2d-raw") == RDKitDescriptorEncoder(raw=True)
    enc = parse_encoder_spec(f"bert:{model_dir}", pooling="mean", layer=1)
    assert isinstance(enc, TransformerEncoder) and enc.pooling == "mean" and enc.layer == 1
    assert isinstance(parse_encoder_spec(str(model_dir)), TransformerEncoder)
    for bad, message in [
        ("ecfp3-1024", "even diameter"),
        ("ecfp:radius=2,size=3", "bad option"),
        ("morgan", "unknown encoder"),
        (f"bert:{model_dir.parent}", "no model.safetensors"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_encoder_spec(bad)
    with pytest.raises(ConfigError, match="pooling"):
        parse_encoder_spec("maccs", pooling="max")


def test_fingerprints_match_rdkit_references() -> None:
    from rdkit import Chem
    from rdkit.Chem import AllChem, MACCSkeys

    ecfp = ECFPEncoder(2, 1024).encode(SMILES)
    maccs = MACCSEncoder().encode(SMILES)
    counts = ECFPEncoder(1, 512, counts=True).encode(SMILES)
    assert ecfp.dtype == np.float32 and ecfp.shape == (len(SMILES), 1024) and maccs.shape == (len(SMILES), 167)
    for i, smi in enumerate(SMILES):
        mol = Chem.MolFromSmiles(smi)
        ref = AllChem.GetMorganFingerprintAsBitVect(mol, 2, nBits=1024)
        assert np.flatnonzero(ecfp[i]).tolist() == list(ref.GetOnBits())
        assert np.flatnonzero(maccs[i]).tolist() == list(MACCSkeys.GenMACCSKeys(mol).GetOnBits())
        ref_counts = AllChem.GetHashedMorganFingerprint(mol, 1, nBits=512).GetNonzeroElements()
        assert {int(k): int(counts[i, k]) for k in np.flatnonzero(counts[i])} == ref_counts


def test_descriptors_do_not_depend_on_the_number_of_worker_processes() -> None:
    one, two = RDKitDescriptorEncoder(n_jobs=1).encode(SMILES), RDKitDescriptorEncoder(n_jobs=2).encode(SMILES)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("encoder", [ECFPEncoder(2, 256), ECFPEncoder(1, 128, counts=True), MACCSEncoder()])
def test_fingerprints_from_worker_processes_equal_one_process(encoder, monkeypatch) -> None:
    """Chunks of 64 over two processes (the input is over the parallel threshold) give the
    single-process rows in order; an invalid SMILES in a later chunk is named by its input row."""
    import dataclasses

    import molw2s.chem.chunks as chunks_module
    import molw2s.encoders.fingerprints as fingerprints

    smiles = (SMILES * 40)[:230]
    monkeypatch.setattr(fingerprints, "PARALLEL_FEATURISE_FROM", 100)
    pools = []
    real_pool = chunks_module.ProcessPoolExecutor
    monkeypatch.setattr(chunks_module, "ProcessPoolExecutor", lambda **kw: pools.append(kw) or real_pool(**kw))
    one = dataclasses.replace(encoder, n_jobs=1).encode(smiles)
    assert not pools
    two = dataclasses.replace(encoder, n_jobs=2).encode(smiles)
    assert [kw["max_workers"] for kw in pools] == [2]
    np.testing.assert_array_equal(one, two)
    with pytest.raises(DataError, match=r"row 201.*'C1CC'"):
        dataclasses.replace(encoder, n_jobs=2).encode([*smiles[:201], "C1CC", *smiles[:20]])
    assert fingerprints.featuriser_jobs(None, 99) == 1 and fingerprints.featuriser_jobs(3, 5) == 3


def test_descriptors_are_signed_log_of_raw_values() -> None:
    raw = RDKitDescriptorEncoder(raw=True).encode(SMILES[:3])
    logged = RDKitDescriptorEncoder().encode(SMILES[:3])
    assert raw.shape == logged.shape and raw.shape[1] > 150
    np.testing.assert_allclose(logged, np.sign(raw) * np.log1p(np.abs(raw)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(signed_log1p(np.array([-np.e + 1, 0.0, 1e30])), [-1.0, 0.0, np.log1p(1e30)], rtol=1e-6)


def test_invalid_smiles_names_its_row() -> None:
    with pytest.raises(DataError, match="row 1"):
        ECFPEncoder().encode(["CCO", "C1CC"])


def _one_at_a_time(model_dir: Path, smiles: list[str], pooling: str, layer: int) -> np.ndarray:
    """Reference: each molecule alone, no padding, pooled by hand."""
    model, tok = load_pretrained(model_dir)
    rows = []
    with torch.no_grad():
        for s in smiles:
            ids = torch.tensor([tok(s)["input_ids"]])
            hidden = model.bert(
                input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True
            ).hidden_states[layer][0]
            rows.append((hidden[0] if pooling == "cls" else hidden.mean(0)).numpy())
    return np.stack(rows)


@pytest.mark.parametrize(("pooling", "layer"), [("cls", -1), ("mean", -1), ("mean", 1)])
def test_batched_pooled_embeddings_match_the_reference(model_dir: Path, pooling: str, layer: int) -> None:
    enc = TransformerEncoder(model_dir, pooling=pooling, layer=layer, batch_size=4)
    got = enc.encode(SMILES)
    assert got.dtype == np.float32 and got.shape == (len(SMILES), 16)
    np.testing.assert_allclose(got, _one_at_a_time(model_dir, SMILES, pooling, layer), atol=1e-5, rtol=1e-5)


def test_length_sorting_changes_speed_not_values(model_dir: Path) -> None:
    smiles = SMILES * 5
    sorted_ = TransformerEncoder(model_dir, batch_size=7, sort_by_length=True).encode(smiles)
    unsorted = TransformerEncoder(model_dir, batch_size=7, sort_by_length=False).encode(smiles)
    np.testing.assert_allclose(sorted_, unsorted, atol=1e-5, rtol=1e-5)
    embeddings_layer0 = TransformerEncoder(model_dir, layer=0).encode(smiles)
    assert not np.allclose(embeddings_layer0, sorted_)
    with pytest.raises(ConfigError, match="out of range"):
        TransformerEncoder(model_dir, layer=3).encode(smiles)


def test_unknown_tokens_are_counted(model_dir: Path) -> None:
    enc = TransformerEncoder(model_dir)
    enc.encode(["CC[Se]C", "CCO"])
    assert enc.last_counts == {"unk_tokens": 1, "truncated": 0}


@pytest.mark.parametrize("task", ["ESOL", "FreeSolv", "Lipop"])
def test_task_embeddings_are_produced_and_cached(
    model_dir: Path, moleculenet_dir: Path, task: str, monkeypatch
) -> None:
    from molw2s.data.tasks import load_task

    loaded = load_task(task, data_dir=moleculenet_dir.parent, download=False)
    first = compute_task_embedding(parse_encoder_spec(f"bert:{model_dir}", pooling="cls", batch_size=256), loaded)
    assert not first.from_cache and first.path.is_file() and first.path.parent.name == "embeddings"
    assert first.path.is_relative_to(Path(os.environ["MOLW2S_DATA_DIR"]))  # the test's own cache
    assert first.values.shape == (len(loaded.smiles), 16) and first.values.dtype == np.float32
    assert first.info["counts"]["truncated"] >= 0 and first.info["task"] == task

    def fail(*args, **kwargs):
        raise AssertionError("recomputed despite the cache")

    with monkeypatch.context() as patch:
        patch.setattr(TransformerEncoder, "encode", fail)
        again = compute_task_embedding(parse_encoder_spec(f"bert:{model_dir}", pooling="cls", batch_size=256), loaded)
    assert again.from_cache and again.path == first.path
    np.testing.assert_array_equal(again.values, first.values)
    mean = compute_task_embedding(parse_encoder_spec(f"bert:{model_dir}", pooling="mean", batch_size=256), loaded)
    assert mean.path != first.path and mean.path.parent == first.path.parent  # pooling is part of the key


def test_embed_task_by_name_and_cache_key_follows_molecules(moleculenet_dir: Path) -> None:
    from molw2s.data.tasks import load_task

    values = embed_task("maccs", "FreeSolv", data_dir=moleculenet_dir.parent)
    assert values.shape == (642, 167)
    task = load_task("FreeSolv", data_dir=moleculenet_dir.parent, download=False)
    same = compute_task_embedding(MACCSEncoder(), task)
    assert same.from_cache
    task.smiles = task.smiles[:10]
    other = compute_task_embedding(MACCSEncoder(), task)
    assert not other.from_cache and other.values.shape == (10, 167)
    np.testing.assert_array_equal(other.values, same.values[:10])
    uncached = compute_task_embedding(MACCSEncoder(), task, cache=False)
    assert uncached.path is None


def test_tasks_over_the_same_molecules_share_their_embeddings(monkeypatch) -> None:
    """Representations depend on the molecules only: a second property of the same library
    (nci_tpsa after nci_logp) reads the first one's array, reported under its own name."""
    from molw2s.data.tasks import load_task

    logp, tpsa = load_task("nci_logp"), load_task("nci_tpsa")
    assert logp.smiles == tpsa.smiles and not np.array_equal(logp.y, tpsa.y)
    first = compute_task_embedding(MACCSEncoder(), logp)

    def fail(*args, **kwargs):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(MACCSEncoder, "encode", fail)
    second = compute_task_embedding(MACCSEncoder(), tpsa)
    assert second.from_cache and second.path == first.path and second.info["task"] == "nci_tpsa"
    np.testing.assert_array_equal(second.values, first.values)


def test_bfloat16_embeddings_are_close_to_float32_and_cached_apart(model_dir: Path) -> None:
    """bf16 autocast changes the forward pass at rounding level only; its embeddings get
    their own cache key, and float32's key has no precision field (older caches stay valid)."""
    smiles = SMILES * 3
    full = TransformerEncoder(model_dir, pooling="mean", batch_size=5)
    half = TransformerEncoder(model_dir, pooling="mean", batch_size=5, precision="bfloat16")
    reference, got = full.encode(smiles), half.encode(smiles)
    assert got.dtype == np.float32 and got.shape == reference.shape
    assert not np.array_equal(got, reference)  # the forward pass really ran in bf16
    assert np.linalg.norm(got - reference) / np.linalg.norm(reference) < 0.03
    assert "precision" not in full.identity() and half.identity()["precision"] == "bfloat16"
    assert {k: v for k, v in half.identity().items() if k != "precision"} == full.identity()
    with pytest.raises(ConfigError, match="precision must be one of"):
        parse_encoder_spec(f"bert:{model_dir}", precision="float16")  # type: ignore[arg-type]


def test_one_encoder_loads_and_hashes_its_checkpoint_once(model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Several tasks through one encoder: one load, one digest of the weights; a checkpoint
    rewritten in place is reloaded and rehashed."""
    import shutil

    import molw2s.encoders.model_files as model_files
    import molw2s.encoders.transformer as embed_module

    path = tmp_path / "model"
    shutil.copytree(model_dir, path)
    loads, digests = [], []
    real_load, real_digest = model_files.load_encoder, embed_module.file_digest
    monkeypatch.setattr(model_files, "load_encoder", lambda d: loads.append(d) or real_load(d))
    monkeypatch.setattr(embed_module, "file_digest", lambda p, a: digests.append(p) or real_digest(p, a))
    enc = TransformerEncoder(path, batch_size=4)
    first = [enc.encode(SMILES), enc.encode(SMILES[:3])]
    identities = [enc.identity(), enc.identity()]
    assert len(loads) == 1 and len(digests) == 3 and identities[0] == identities[1]
    np.testing.assert_array_equal(first[1], first[0][:3])
    model, tok = load_pretrained(path)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    save_model(model, tok, path)  # new weights under the same path
    changed = enc.encode(SMILES)
    assert len(loads) == 2 and not np.allclose(changed, first[0])
    assert enc.identity()["files"]["model.safetensors"] != identities[0]["files"]["model.safetensors"]
