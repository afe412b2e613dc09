"""The regex SMILES tokenizer: exact token splits, lossless joins, HF round trip, [UNK] and truncation."""

from __future__ import annotations

import csv
import gzip
import json

import pytest
from transformers import AutoTokenizer

from molw2s.encoders.tokenizer import (
    SPECIAL_TOKENS,
    build_vocab,
    encode_smiles,
    is_smiles_token,
    load_tokenizer,
    make_tokenizer,
    save_tokenizer,
    tokenize_smiles,
)
from molw2s.errors import ConfigError

TASK_FILES = {"ESOL": "ESOL.csv.gz", "FreeSolv": "FreeSolv.csv.gz", "Lipop": "Lipop.csv.gz"}


@pytest.mark.parametrize(
    ("smiles", "tokens"),
    [
        ("CCl", ["C", "Cl"]),
        ("BrC(Br)=O", ["Br", "C", "(", "Br", ")", "=", "O"]),
        ("c1cc[nH]c1", ["c", "1", "c", "c", "[nH]", "c", "1"]),
        ("C[C@@H](N)C(=O)[O-]", ["C", "[C@@H]", "(", "N", ")", "C", "(", "=", "O", ")", "[O-]"]),
        ("C%12CC%12", ["C", "%12", "C", "C", "%12"]),
        ("C%(123)CC%(123)", ["C", "%(123)", "C", "C", "%(123)"]),
        ("[Na+].[Cl-]", ["[Na+]", ".", "[Cl-]"]),
        ("F/C=C\\F", ["F", "/", "C", "=", "C", "\\", "F"]),
        ("C#N", ["C", "#", "N"]),
        ("[2H]C([2H])([2H])[2H]", ["[2H]", "C", "(", "[2H]", ")", "(", "[2H]", ")", "[2H]"]),
        (
            "c1ccc2c(c1)-c1ccccc1-2",
            [
                "c",
                "1",
                "c",
                "c",
                "c",
                "2",
                "c",
                "(",
                "c",
                "1",
                ")",
                "-",
                "c",
                "1",
                "c",
                "c",
                "c",
                "c",
                "c",
                "1",
                "-",
                "2",
            ],
        ),
    ],
)
def test_regex_splits_atoms_rings_bonds_and_branches(smiles: str, tokens: list[str]) -> None:
    assert tokenize_smiles(smiles) == tokens
    assert all(is_smiles_token(t) for t in tokens)


def test_characters_outside_smiles_become_single_tokens_not_lost() -> None:
    tokens = tokenize_smiles("CC O\u00e9")
    assert "".join(tokens) == "CC O\u00e9"
    assert [t for t in tokens if not is_smiles_token(t)] == [" ", "\u00e9"]


def _raw_smiles(path) -> list[str]:
    with gzip.open(path, "rt", newline="") as fh:
        return [row["smiles"] for row in csv.DictReader(fh)]


@pytest.mark.parametrize("task", sorted(TASK_FILES))
def test_join_gives_back_every_task_molecule_and_fast_tokenizer_agrees(task: str, moleculenet_dir) -> None:
    from molw2s.data.tasks import load_task

    raw = _raw_smiles(moleculenet_dir / TASK_FILES[task])
    canonical = load_task(task, data_dir=moleculenet_dir.parent, download=False).smiles
    assert len(raw) > 500 and len(canonical) > 500
    vocab = build_vocab(canonical)
    tok = make_tokenizer(vocab.token_to_id)
    for smiles in raw + canonical:
        tokens = tokenize_smiles(smiles)
        assert "".join(tokens) == smiles
        assert all(is_smiles_token(t) for t in tokenize_smiles(smiles.strip())), smiles
    for smiles in canonical:  # the Rust tokenizer splits exactly like the Python regex
        assert tok.tokenize(smiles) == tokenize_smiles(smiles)
        assert tok.decode(tok(smiles)["input_ids"], skip_special_tokens=True) == smiles


def test_vocab_orders_specials_then_by_count_and_drops_rare_tokens() -> None:
    vocab = build_vocab(["CCO", "CCN", "CC[Se]C"], min_freq=2)
    assert list(vocab.token_to_id)[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert list(vocab.token_to_id)[len(SPECIAL_TOKENS) :] == ["C"]  # 7 x C; O, N, [Se] seen once
    assert vocab.dropped == {"N": 1, "O": 1, "[Se]": 1}
    assert vocab.counts["C"] == 7
    with pytest.raises(ConfigError, match="min_freq"):
        build_vocab(["C"], min_freq=0)


def test_unknown_tokens_map_to_unk_and_are_counted() -> None:
    tok = make_tokenizer(build_vocab(["CCO", "c1ccccc1"]).token_to_id)
    enc = encode_smiles(tok, ["CCO", "C[Se]CBr", "CC"], max_length=128)
    unk = tok.unk_token_id
    assert enc.n_unk == 2  # [Se] and Br
    assert enc.ids[1] == [
        tok.cls_token_id,
        tok.convert_tokens_to_ids("C"),
        unk,
        tok.convert_tokens_to_ids("C"),
        unk,
        tok.sep_token_id,
    ]
    assert enc.truncated == []


def test_overlong_sequences_are_truncated_with_sep_and_reported() -> None:
    tok = make_tokenizer(build_vocab(["CCCCCCCCCC"]).token_to_id)
    enc = encode_smiles(tok, ["CCC", "C" * 6, "C" * 7], max_length=8)  # 5, 8 and 9 ids
    assert enc.truncated == [2]
    assert [len(s) for s in enc.ids] == [5, 8, 8]
    assert enc.ids[2][0] == tok.cls_token_id and enc.ids[2][-1] == tok.sep_token_id
    with pytest.raises(ConfigError, match="max_length"):
        encode_smiles(tok, ["C"], max_length=2)


def test_save_and_reload_through_auto_tokenizer(tmp_path) -> None:
    smiles = ["CC(=O)Oc1ccccc1C(=O)O", "C[C@@H](N)C(=O)O", "Clc1ccc(Br)cc1"]
    tok = make_tokenizer(build_vocab(smiles).token_to_id, max_length=64)
    save_tokenizer(tok, tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    for loaded in (AutoTokenizer.from_pretrained(str(tmp_path)), load_tokenizer(tmp_path)):
        assert loaded.get_vocab() == tok.get_vocab()
        assert loaded(smiles)["input_ids"] == tok(smiles)["input_ids"]
        assert [loaded.pad_token, loaded.unk_token, loaded.cls_token, loaded.sep_token, loaded.mask_token] == list(
            SPECIAL_TOKENS
        )
        assert loaded.model_max_length == 64
