"""``molw2s convert molbert``: a checkpoint in MolBERT's exact layout (Lightning dict,
``model.bert.*`` + task heads, hparams.yaml two folders up, torch 1.4's legacy format) is
converted; the converted encoder equals a direct re-implementation of MolBERT's forward,
its tokenizer gives MolBERT's ids, plain transformers loads it in a fresh process, and
``bert:DIR`` works in embed, run and finetune. Unsafe or malformed inputs fail clearly."""

from __future__ import annotations

import fractions
import json
import math
import subprocess
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from typer.testing import CliRunner

from molw2s.cli import app
from molw2s.encoders.embed import parse_encoder_spec
from molw2s.encoders.model_files import load_encoder
from molw2s.encoders.molbert_checkpoint import convert_molbert_checkpoint
from molw2s.encoders.tokenizer import encode_smiles
from molw2s.errors import MolW2SError

# ---- MolBERT, re-implemented from its published code (BenevolentAI/MolBERT) ---------------------

#: tiny MolBERT (hparams ``tiny: true``): hidden 16, 2 layers, 2 heads, intermediate 32
HIDDEN, LAYERS, HEADS, INTERMEDIATE, N_PHYSCHEM = 16, 2, 2, 32, 200
#: multi-character symbols -> the single characters MolBERT substitutes (elements.txt order)
MULTI = {"Br": "β", "Cl": "χ", "Se": "σ", "Si": "π", "@@": "α", "se": "Σ"}
ALLOWED = ("F", "H", "I", "B", "C", "N", "O", "P", "S", "Br", "Cl", "Si", "Se", "se", "@@")
SPECIAL = tuple("0123456789=@#%/\\()+-.[]")
IDX_TO_TOKEN = ["[PAD]", "[CLS]", "[SEP]", "[MASK]"] + [MULTI.get(e, e) for e in ALLOWED] + list(SPECIAL)
TOKEN_TO_IDX = {t: i for i, t in enumerate(IDX_TO_TOKEN)}
HPARAMS = {
    "tiny": True,
    "vocab_size": 42,
    "max_seq_length": 128,
    "max_position_embeddings": 512,
    "masked_lm": 1,
    "is_same_smiles": 0,
    "num_physchem_properties": N_PHYSCHEM,
    "named_descriptor_set": "all",
    "permute": 1,
    "learning_rate": 3e-5,
    "batch_size": 16,
    "train_file": "data/guacamol_v1_train.smiles",
    "valid_file": None,
}

SMILES = [
    "CCO",
    "c1ccccc1O",
    "C[C@@H](Cl)Br",
    "F/C=C\\Br",
    "[NH3+]CC(=O)[O-]",
    "c1ccc2c(c1)[se]c1ccccc12",
    "C[Si](C)(C)OC(=O)C#N",
    "ClC1=CC=C(I)C=C1",
    "O=S(=O)(O)c1ccc2ccccc2c1",
    "[2H]C([2H])([2H])N1CCN(C)CC1",
    "C1CC2CCC1CCCCCCCCC2",
    "OP(=O)(O)OC[C@H]1O[C@@H](n2cnc3c(N)ncnc32)[C@H](O)[C@@H]1O",
]


def molbert_standardise(smiles: str) -> str:
    """MolBERT's SmilesIndexFeaturizer.standardise with canonicalise=False."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    Chem.SanitizeMol(mol, Chem.SanitizeFlags.SANITIZE_ALL ^ Chem.SanitizeFlags.SANITIZE_CLEANUP, catchErrors=True)
    Chem.Kekulize(mol, clearAromaticFlags=True)
    return Chem.MolToSmiles(mol, kekuleSmiles=True, canonical=False)


def molbert_ids(standard_smiles: str) -> list[int]:
    """MolBERT's encode + decorate + index lookup (an unknown character stays [PAD] = 0)."""
    text = standard_smiles
    for symbol, char in MULTI.items():
        text = text.replace(symbol, char)
    return [TOKEN_TO_IDX.get(c, 0) for c in ["[CLS]", *text, "[SEP]"]]


def molbert_batch(smiles: list[str]) -> torch.Tensor:
    """Padded ids of MolBERT's featurizer (trimmed to the longest)."""
    ids = [molbert_ids(molbert_standardise(s)) for s in smiles]
    out = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
    for i, row in enumerate(ids):
        out[i, : len(row)] = torch.tensor(row)
    return out


def molbert_forward(sd: dict[str, torch.Tensor], ids: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """MolBERT's SuperPositionalBertModel (transformers 3.5.1 BERT) on ``ids``: every
    hidden state (embeddings first) and the pooled output. Attention mask: ids != 0."""

    def p(name: str) -> torch.Tensor:
        return sd[f"model.bert.{name}"]

    def linear(x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ p(f"{name}.weight").T + p(f"{name}.bias")

    def norm(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (HIDDEN,), p(f"{name}.weight"), p(f"{name}.bias"), eps=1e-12)

    batch, length = ids.shape
    sinusoid_inp = torch.ger(torch.arange(length, dtype=torch.float32), p("embeddings.position_embeddings.inv_freq"))
    positions = torch.cat([sinusoid_inp.sin(), sinusoid_inp.cos()], dim=-1)
    x = p("embeddings.word_embeddings.weight")[ids] + positions[None] + p("embeddings.token_type_embeddings.weight")[0]
    x = norm(x, "embeddings.LayerNorm")
    states = [x]
    mask = (1.0 - (ids != 0).float())[:, None, None, :] * -10000.0
    d = HIDDEN // HEADS
    for i in range(LAYERS):
        pre = f"encoder.layer.{i}"

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, HEADS, d).transpose(1, 2)

        q, k, v = (split(linear(x, f"{pre}.attention.self.{n}")) for n in ("query", "key", "value"))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + mask, dim=-1)
        context = (probs @ v).transpose(1, 2).reshape(batch, length, HIDDEN)
        attended = norm(linear(context, f"{pre}.attention.output.dense") + x, f"{pre}.attention.output.LayerNorm")
        inner = F.gelu(linear(attended, f"{pre}.intermediate.dense"))
        x = norm(linear(inner, f"{pre}.output.dense") + attended, f"{pre}.output.LayerNorm")
        states.append(x)
    return states, torch.tanh(linear(x[:, 0], "pooler.dense"))


def molbert_state_dict(seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    """A random state dict with MolBERT's key names: ``model.bert.*`` (inv_freq buffer of
    transformers' PositionalEmbedding) and the masked-LM and PhysChem task heads."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    def ln(prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.weight": 1 + rnd(HIDDEN, scale=0.1), f"{prefix}.bias": rnd(HIDDEN, scale=0.1)}

    def lin(prefix: str, n_out: int, n_in: int) -> dict[str, torch.Tensor]:
        return {f"{prefix}.weight": rnd(n_out, n_in), f"{prefix}.bias": rnd(n_out, scale=0.1)}

    bert: dict[str, torch.Tensor] = {
        "embeddings.word_embeddings.weight": rnd(42, HIDDEN, scale=1.0),
        "embeddings.position_embeddings.inv_freq": 1 / (10000 ** (torch.arange(0.0, HIDDEN, 2.0) / HIDDEN)),
        "embeddings.token_type_embeddings.weight": rnd(2, HIDDEN),
        **ln("embeddings.LayerNorm"),
    }
    for i in range(LAYERS):
        pre = f"encoder.layer.{i}"
        for name in ("query", "key", "value"):
            bert.update(lin(f"{pre}.attention.self.{name}", HIDDEN, HIDDEN))
        bert.update(lin(f"{pre}.attention.output.dense", HIDDEN, HIDDEN) | ln(f"{pre}.attention.output.LayerNorm"))
        bert.update(lin(f"{pre}.intermediate.dense", INTERMEDIATE, HIDDEN))
        bert.update(lin(f"{pre}.output.dense", HIDDEN, INTERMEDIATE) | ln(f"{pre}.output.LayerNorm"))
    bert.update(lin("pooler.dense", HIDDEN, HIDDEN))
    mlm = "model.tasks.0.masked_lm_head"
    bias = rnd(42, scale=0.1)
    heads = {
        f"{mlm}.bias": bias,
        **lin(f"{mlm}.transform.dense", HIDDEN, HIDDEN),
        **ln(f"{mlm}.transform.LayerNorm"),
        f"{mlm}.decoder.weight": rnd(42, HIDDEN),
        f"{mlm}.decoder.bias": bias,
        **lin("model.tasks.1.physchem_head.physchem_clf.1", HIDDEN, HIDDEN),
        **lin("model.tasks.1.physchem_head.physchem_clf.3", N_PHYSCHEM, HIDDEN),
    }
    return OrderedDict({**{f"model.bert.{k}": v for k, v in bert.items()}, **heads})


class _FakeLightning:
    """``pytorch_lightning.utilities.parsing.AttributeDict`` importable only while saving,
    as on the machine that trained MolBERT (Lightning 0.8.4)."""

    NAMES = ("pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing")

    def __enter__(self) -> type:
        module = types.ModuleType("pytorch_lightning.utilities.parsing")

        class AttributeDict(dict):
            def __getattr__(self, key: str) -> object:
                return self[key]

        AttributeDict.__module__, AttributeDict.__qualname__ = module.__name__, "AttributeDict"
        module.AttributeDict = AttributeDict  # type: ignore[attr-defined]
        for name in self.NAMES:
            sys.modules[name] = module
        return AttributeDict

    def __exit__(self, *exc: object) -> None:
        for name in self.NAMES:
            sys.modules.pop(name, None)


def write_molbert_run(root: Path, *, extra: dict | None = None, state: dict | None = None) -> Path:
    """``root/hparams.yaml`` and ``root/checkpoints/last.ckpt`` as MolBERT's training writes them
    (``state`` replaces the state dict, ``extra`` adds or replaces top-level entries)."""
    (root / "checkpoints").mkdir(parents=True)
    (root / "hparams.yaml").write_text(yaml.dump(HPARAMS))
    state = molbert_state_dict() if state is None else state
    params = [p for k, p in state.items() if not k.endswith("inv_freq")]
    with _FakeLightning() as attribute_dict:
        checkpoint = {
            "epoch": 100,
            "global_step": 12345,
            "pytorch-lightning_version": "0.8.4",
            "checkpoint_callback_best_model_score": torch.tensor(0.42),
            "checkpoint_callback_best_model_path": str(root / "checkpoints" / "epoch=99.ckpt"),
            "optimizer_states": [
                {
                    "state": {i: {"step": 3, "exp_avg": torch.zeros_like(p)} for i, p in enumerate(params[:3])},
                    "param_groups": [{"lr": 3e-5, "betas": (0.9, 0.999), "eps": 1e-8, "params": [0, 1, 2]}],
                }
            ],
            "lr_schedulers": [{"base_lrs": [3e-5], "last_epoch": 12345, "_step_count": 12346, "lr_lambdas": [None]}],
            "state_dict": state,
            "hparams_name": "args",
            "hyper_parameters": attribute_dict(HPARAMS),
            **(extra or {}),
        }
        path = root / "checkpoints" / "last.ckpt"
        torch.save(checkpoint, path, _use_new_zipfile_serialization=False)  # torch 1.4's format
    return path


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, converted directory)."""
    root = tmp_path_factory.mktemp("molbert")
    ckpt = write_molbert_run(root / "molbert_100epochs")
    out = root / "converted"
    convert_molbert_checkpoint(ckpt, out)
    return ckpt, out


# ---- the converted model is MolBERT ------------------------------------------------------------


def test_hidden_states_and_pooled_output_equal_molberts_forward(converted) -> None:
    _, out = converted
    state = molbert_state_dict()
    ids = molbert_batch(SMILES)
    reference, pooled = molbert_forward(state, ids)
    model, _ = load_encoder(out)  # molw2s's loader: bare encoder, no pooler
    with torch.no_grad():
        ours = model(input_ids=ids, attention_mask=(ids != 0).long(), output_hidden_states=True).hidden_states
    assert len(ours) == LAYERS + 1
    for ref, got in zip(reference, ours):
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    from transformers import BertModel

    with_pooler = BertModel.from_pretrained(str(out)).eval()
    with torch.no_grad():
        got_pooled = with_pooler(input_ids=ids, attention_mask=(ids != 0).long()).pooler_output
    torch.testing.assert_close(got_pooled, pooled, atol=1e-5, rtol=1e-5)


def test_position_table_is_molberts_sinusoid_for_every_position(converted) -> None:
    _, out = converted
    model, _ = load_encoder(out)
    table = model.embeddings.position_embeddings.weight.detach()
    assert table.shape == (512, HIDDEN) and model.config.fixed_position_embeddings is True
    inv_freq = 1 / (10000 ** (torch.arange(0.0, HIDDEN, 2.0) / HIDDEN))
    angles = torch.ger(torch.arange(512, dtype=torch.float32), inv_freq)
    torch.testing.assert_close(table, torch.cat([angles.sin(), angles.cos()], -1), atol=0, rtol=0)


def test_tokenizer_gives_molberts_ids(converted) -> None:
    _, out = converted
    _, tokenizer = load_encoder(out)
    # Kekulé SMILES straight through the tokenizer: bracket atoms, Cl/Br/Si/Se, %10, stereo, charges, isotopes
    kekule = [
        "C[C@@H](Cl)Br",
        "[C@H]1(F)CC1",
        "C%10CCCCC%10",
        "C1CC%11CC1CCCC%11",
        "F/C=C\\Br",
        "[NH3+]CC(=O)[O-]",
        "C1=CC=C2C(=C1)[Se]C1=CC=CC=C12",
        "C[Si](C)(C)I",
        "[2H]C#N",
        "OP(=O)(O)O.S",
        "C1=C[se]C=C1",
    ]
    for s in kekule:
        assert tokenizer(s)["input_ids"] == molbert_ids(s), s
    # molw2s's encoder path kekulizes first, as MolBERT's featurizer does
    encoded = encode_smiles(tokenizer, SMILES, max_length=512)
    assert encoded.ids == [molbert_ids(molbert_standardise(s)) for s in SMILES]
    assert encoded.n_unk == 0
    # a character MolBERT does not know becomes [UNK] (id 42) and is counted
    assert encode_smiles(tokenizer, ["C*"], max_length=512).n_unk == 1
    assert tokenizer.convert_ids_to_tokens(42) == "[UNK]"


def test_plain_transformers_in_a_fresh_process_gives_the_same_states(converted) -> None:
    _, out = converted
    kekule = [molbert_standardise(s) for s in SMILES[:4]]
    script = (
        "import sys, json, torch\n"
        "from transformers import AutoModel, AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1]); model = AutoModel.from_pretrained(sys.argv[1]).eval()\n"
        "batch = tok(json.loads(sys.argv[2]), padding=True, return_tensors='pt')\n"
        "with torch.no_grad(): o = model(**batch)\n"
        "print(json.dumps({'mods': sorted(m for m in sys.modules if m.startswith('molw2s')),"
        " 'ids': batch['input_ids'].tolist(), 'h': o.last_hidden_state.tolist(),"
        " 'pooled': o.pooler_output.tolist()}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(out), json.dumps(kekule)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    assert fresh["mods"] == []
    ids = molbert_batch(SMILES[:4])
    assert fresh["ids"] == ids.tolist()
    states, pooled = molbert_forward(molbert_state_dict(), ids)
    mask = ids != 0
    torch.testing.assert_close(torch.tensor(fresh["h"])[mask], states[-1][mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.tensor(fresh["pooled"]), pooled, atol=1e-5, rtol=1e-5)


def test_model_card_and_manifest_name_the_source(converted) -> None:
    ckpt, out = converted
    from molw2s.io import file_digest, read_manifest, verify_dir

    digest = file_digest(ckpt, "sha256")
    card = (out / "README.md").read_text()
    assert digest in card and str(ckpt) in card and "fixed sinusoids" in card and "Kekulé" in card
    assert "| MolBERT tiny | True |" in card and "| Lightning epoch | 100 |" in card
    assert verify_dir(out) is None and read_manifest(out)["source_sha256"] == digest
    assert json.loads((out / "tokenizer_config.json").read_text())["smiles_form"] == "kekule"


# ---- bert:DIR in embed, run and finetune -------------------------------------------------------


def test_bert_spec_embeds_with_molberts_cls_vector(converted) -> None:
    _, out = converted
    encoder = parse_encoder_spec(f"bert:{out}", pooling="cls", batch_size=5)
    values = encoder.encode(SMILES)
    states, _ = molbert_forward(molbert_state_dict(), molbert_batch(SMILES))
    np.testing.assert_allclose(values, states[-1][:, 0].numpy(), atol=1e-5)
    assert encoder.identity()["smiles_form"] == "kekule"  # the spelling keys the embedding cache


def test_vocabulary_coverage_counts_molberts_own_tokens(converted) -> None:
    from molw2s.encoders.coverage import vocabulary_coverage
    from molw2s.encoders.model_files import load_encoder
    from molw2s.encoders.tokenizer import encode_smiles

    _, out = converted
    _, tokenizer = load_encoder(out)
    smiles = [*SMILES, "C[N+](C)(C)C", "c1ccccc1[Na]", "OB(O)c1ccccc1"]
    coverage = vocabulary_coverage(tokenizer, smiles)
    assert coverage.n_unk == encode_smiles(tokenizer, smiles, max_length=512).n_unk > 0
    assert "c" not in coverage.unknown  # aromatic atoms are kekulized first, as MolBERT does


@pytest.fixture(scope="module")
def csv_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pandas as pd

    from molw2s.data.tasks import load_task

    task = load_task("nci_logp")
    path = tmp_path_factory.mktemp("task") / "logp120.csv"
    pd.DataFrame({"smiles": task.smiles[:120], "logp": task.y[:120]}).to_csv(path, index=False)
    return path


def test_cli_converts_and_embed_uses_the_directory(tmp_path: Path, csv_task: Path) -> None:
    ckpt = write_molbert_run(tmp_path / "run")
    out = tmp_path / "molbert-hf"
    runner = CliRunner()
    result = runner.invoke(app, ["convert", "molbert", str(ckpt), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for text in ("2 layers, hidden 16, 2 heads", "42 MolBERT tokens + [UNK]", "512", "model.tasks.0.masked_lm_head"):
        assert text in result.output, result.output
    assert "dropped model.tasks.1.physchem_head (4 tensors)" in result.output
    again = runner.invoke(app, ["convert", "molbert", str(ckpt), "--out", str(out)])
    assert again.exit_code != 0 and "--force" in str(again.exception)
    forced = runner.invoke(app, ["convert", "molbert", str(ckpt), "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    embedded = runner.invoke(
        app,
        [
            "embed",
            "-e",
            f"bert:{out}",
            "-t",
            str(csv_task),
            "--no-progress",
            "--no-cache",
            "-o",
            str(tmp_path / "e.npy"),
        ],
    )
    assert embedded.exit_code == 0, embedded.output
    assert np.load(tmp_path / "e.npy").shape == (120, HIDDEN)
    assert "unk tokens: 2" in embedded.output  # the "u" of two copper complexes' [Cu]: not in MolBERT's vocabulary


def test_default_output_is_named_after_the_run_in_the_working_directory(tmp_path, monkeypatch) -> None:
    ckpt = write_molbert_run(tmp_path / "molbert_100epochs")
    monkeypatch.chdir(tmp_path)
    report = convert_molbert_checkpoint(ckpt)
    assert (
        report.directory == tmp_path / "molbert_100epochs-molw2s" and (report.directory / "model.safetensors").is_file()
    )


def test_finetuning_keeps_the_sinusoids_frozen_and_trains_the_rest(converted, csv_task) -> None:
    import pandas as pd

    from molw2s.finetuning.config import FinetuneSettings
    from molw2s.finetuning.trainer import LabelledSmiles, finetune_regressor

    _, out = converted
    frame = pd.read_csv(csv_task)
    train = LabelledSmiles.of(list(frame.smiles[:80]), frame.logp[:80])
    valid = LabelledSmiles.of(list(frame.smiles[80:]), frame.logp[80:])
    settings = FinetuneSettings(epochs=2, batch_size=16, lr=1e-2, warmup_frac=0.0, patience=None, device="cpu")
    fitted = finetune_regressor(out, train, valid, settings, seed=0)
    before, _ = load_encoder(out)
    after = fitted.model.encoder
    assert not after.embeddings.position_embeddings.weight.requires_grad
    torch.testing.assert_close(
        after.embeddings.position_embeddings.weight, before.embeddings.position_embeddings.weight, atol=0, rtol=0
    )
    assert not torch.equal(after.embeddings.word_embeddings.weight, before.embeddings.word_embeddings.weight)
    assert np.isfinite(fitted.predict(valid.smiles)).all()


def test_run_uses_converted_molbert_as_the_strong_and_as_a_weak_model(converted, csv_task, tmp_path) -> None:
    from molw2s.experiment.config import load_experiment_config
    from molw2s.experiment.runner import run_experiment

    _, out = converted
    for strong, weak in ((f"bert:{out}", ["maccs", "ecfp2-256"]), ("ecfp4-1024", [f"bert:{out}", "maccs"])):
        config = {
            "name": "molbert_run",
            "run_dir": str(tmp_path / f"run-{strong[:4]}"),
            "strong": strong,
            "weak": weak,
            "tasks": [{"name": str(csv_task), "smiles_col": "smiles", "label_col": "logp"}],
            "splits": {"seeds": [0], "min_weak": 10, "min_strong": 10, "min_test": 5},
            "evaluation": {"n_boot": 20},
        }
        (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
        results = run_experiment(load_experiment_config(tmp_path / "run.yaml"), progress=False)
        assert results["tasks"]["logp120"]["n_cells"] == 2


# ---- safety and clear errors -------------------------------------------------------------------


def test_a_checkpoint_needing_full_unpickling_is_refused(tmp_path: Path) -> None:
    """molw2s never unpickles an outside file in full: the error says what it pickles and
    how to re-save the weights alone; the re-saved file converts."""
    ckpt = write_molbert_run(tmp_path / "run", extra={"extra_state": fractions.Fraction(1, 3)})
    with pytest.raises(
        MolW2SError, match=r"last\.ckpt.*full unpickling.*fractions\.Fraction.*never unpickles.*state_dict"
    ):
        convert_molbert_checkpoint(ckpt, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    result = CliRunner().invoke(app, ["convert", "molbert", str(ckpt), "--out", str(tmp_path / "c")])
    assert result.exit_code != 0 and "never unpickles" in str(result.exception)
    weights = ckpt.with_name("weights.ckpt")  # what the error tells the user to save: the state dict alone
    torch.save({"state_dict": molbert_state_dict()}, weights)
    assert convert_molbert_checkpoint(weights, tmp_path / "b").directory == tmp_path / "b"


def test_molberts_own_checkpoint_needs_no_unpickling(converted) -> None:
    ckpt, _ = converted
    assert "pytorch_lightning" not in sys.modules  # its AttributeDict is read as a dict
    report = convert_molbert_checkpoint(ckpt, ckpt.parent.parent.parent / "again")
    assert report.dropped == {
        "model.tasks.0.masked_lm_head": 7,
        "model.tasks.1.physchem_head": 4,
    }


def test_missing_hparams_names_where_it_looked(tmp_path: Path) -> None:
    ckpt = write_molbert_run(tmp_path / "run")
    (tmp_path / "run" / "hparams.yaml").unlink()
    with pytest.raises(MolW2SError, match=rf"{tmp_path / 'run' / 'hparams.yaml'}: no such file.*--hparams"):
        convert_molbert_checkpoint(ckpt, tmp_path / "out")
    (tmp_path / "elsewhere.yaml").write_text(yaml.dump(HPARAMS))
    convert_molbert_checkpoint(ckpt, tmp_path / "out", hparams=tmp_path / "elsewhere.yaml")


def test_hparams_yaml_with_tuples_is_read_and_python_objects_are_refused(tmp_path: Path) -> None:
    ckpt = write_molbert_run(tmp_path / "run")
    text = yaml.dump(HPARAMS) + "gpus: !!python/tuple [0, 1]\n"
    (tmp_path / "run" / "hparams.yaml").write_text(text)
    convert_molbert_checkpoint(ckpt, tmp_path / "out")
    (tmp_path / "run" / "hparams.yaml").write_text(text + "obj: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(MolW2SError, match=r"hparams\.yaml: not a plain YAML mapping"):
        convert_molbert_checkpoint(ckpt, tmp_path / "out2")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"state_dict": None}, r"last\.ckpt: no state_dict"),
        (
            {"state_dict": {"bert.embeddings.word_embeddings.weight": torch.zeros(42, 16)}},
            r"last\.ckpt: no MolBERT encoder weights \(keys model\.bert\.\*\).*bert\.embeddings",
        ),
        (
            {"drop": "model.bert.embeddings.position_embeddings.inv_freq"},
            r"last\.ckpt: expected model\.bert\.embeddings\.position_embeddings\.inv_freq",
        ),
        (
            {"drop": "model.bert.encoder.layer.1.output.dense.bias"},
            r"last\.ckpt: encoder weights do not match a BERT: missing \['encoder\.layer\.1\.output\.dense\.bias'\]",
        ),
        (
            {"add": "model.bert.encoder.layer.0.attention.self.distance_embedding.weight"},
            r"unexpected \['model\.bert\.encoder\.layer\.0\.attention\.self\.distance_embedding\.weight'\]",
        ),
    ],
)
def test_malformed_checkpoints_fail_naming_the_file(tmp_path: Path, extra: dict, message: str) -> None:
    state = molbert_state_dict()
    if "drop" in extra:
        del state[extra.pop("drop")]
    if "add" in extra:
        state[extra.pop("add")] = torch.zeros(3, HIDDEN)
    ckpt = write_molbert_run(tmp_path / "run", extra=extra, state=state)
    with pytest.raises(MolW2SError, match=message):
        convert_molbert_checkpoint(ckpt, tmp_path / "out")


def test_not_a_checkpoint_and_other_sizes_fail_clearly(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ckpt = write_molbert_run(run)
    with pytest.raises(MolW2SError, match="the output directory would replace"):
        convert_molbert_checkpoint(ckpt, run, force=True)
    (run / "hparams.yaml").write_text(yaml.dump({**HPARAMS, "tiny": False}))
    with pytest.raises(MolW2SError, match="not MolBERT's tiny=False model.*num_attention_heads"):
        convert_molbert_checkpoint(ckpt, tmp_path / "out")
    (run / "hparams.yaml").write_text(yaml.dump({**HPARAMS, "tiny": False, "num_attention_heads": 4}))
    assert convert_molbert_checkpoint(ckpt, tmp_path / "out").architecture.num_heads == 4
    (run / "hparams.yaml").write_text(yaml.dump({**HPARAMS, "vocab_size": 50}))
    with pytest.raises(MolW2SError, match="MolBERT's SMILES vocabulary has 42 tokens"):
        convert_molbert_checkpoint(ckpt, tmp_path / "out2")
    ckpt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(MolW2SError, match=r"last\.ckpt: not a readable PyTorch checkpoint"):
        convert_molbert_checkpoint(ckpt, tmp_path / "out3")
    ckpt.write_bytes(b"\x80\x02garbage")
    with pytest.raises(MolW2SError, match=r"last\.ckpt: reading it needs full unpickling \(Unsupported operand"):
        convert_molbert_checkpoint(ckpt, tmp_path / "out3")
    with pytest.raises(MolW2SError, match="no such checkpoint file"):
        convert_molbert_checkpoint(tmp_path / "missing.ckpt", tmp_path / "out4")
