"""Corpora: nci5k, local files, MOSES, GuacaMol downloads with md5, reproducible subsampling."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib

import numpy as np
import pytest
from rdkit import Chem

from molw2s.data import registry
from molw2s.data.corpora import load_corpus
from molw2s.errors import ChecksumError, ConfigError, DataError, DataNotFoundError


@pytest.fixture
def no_wait(monkeypatch):
    monkeypatch.setattr("molw2s.data.download.sleep", lambda s: None)


def test_nci5k_reports_its_invalid_rows():
    corpus = load_corpus("nci5k")
    assert corpus.n_total == 4999 and len(corpus) == 4991 and corpus.n_skipped == 8
    assert corpus.rows.tolist() == sorted(set(range(4999)) - {i.row for i in corpus.invalid})
    lines = registry.nci5k_path().read_text().splitlines()
    for item in corpus.invalid:
        assert lines[item.line - 1].split()[0] == item.smiles and Chem.MolFromSmiles(item.smiles) is None
    assert "8 of 4999 SMILES invalid" in corpus.report()


def test_subsample_is_reproducible_and_seeded():
    a = load_corpus("nci5k", n=200, seed=1)
    b = load_corpus("nci5k", n=200, seed=1)
    c = load_corpus("nci5k", n=200, seed=2)
    assert a.smiles == b.smiles and a.rows.tolist() == b.rows.tolist()
    assert a.rows.tolist() != c.rows.tolist()
    assert len(a) == 200 and np.all(np.diff(a.rows) > 0)
    full = load_corpus("nci5k")
    lookup = dict(zip(full.rows.tolist(), full.smiles))
    assert [lookup[r] for r in a.rows.tolist()] == a.smiles


def test_subsample_returns_n_valid_even_with_invalid_rows(tmp_path):
    f = tmp_path / "m.smi"
    f.write_text("".join(f"{'C' * (i % 9 + 1)}O\nC1CC\n" for i in range(30)))  # half invalid
    corpus = load_corpus(str(f), n=30, seed=0)
    assert len(corpus) == 30 and corpus.rows.tolist() == list(range(0, 60, 2))
    # the invalid rows reported are exactly those visited before the 30th valid one
    position = np.argsort(np.random.default_rng(0).permutation(60))
    cut = position[corpus.rows].max()
    assert [i.row for i in corpus.invalid] == [r for r in range(1, 60, 2) if position[r] < cut]
    assert all(item.line == item.row + 1 for item in corpus.invalid)
    assert load_corpus(str(f)).n_skipped == 30
    with pytest.raises(DataError, match="only 30 are valid"):
        load_corpus(str(f), n=31)
    with pytest.raises(ConfigError, match="has only 60 rows"):
        load_corpus(str(f), n=61)
    with pytest.raises(ConfigError, match=">= 1"):
        load_corpus(str(f), n=0)
    with pytest.raises(DataError, match="strict mode"):
        load_corpus(str(f), strict=True)


def test_parsed_corpus_is_cached_until_the_file_or_the_draw_changes(tmp_path, monkeypatch):
    import molw2s.data.corpora as corpora

    f = tmp_path / "m.smi"
    f.write_text("CCO\nxyz\nc1ccccc1\nCCN\n")
    first = load_corpus(str(f), n=2, seed=3)
    parsed = []
    real = corpora._parse_corpus
    monkeypatch.setattr(corpora, "_parse_corpus", lambda *a: parsed.append(a) or real(*a))
    again = load_corpus(str(f), n=2, seed=3)  # read back: nothing parsed
    assert parsed == [] and again.smiles == first.smiles and again.rows.tolist() == first.rows.tolist()
    assert [dataclasses.astuple(i) for i in again.invalid] == [dataclasses.astuple(i) for i in first.invalid]
    load_corpus(str(f), n=2, seed=4)
    f.write_text("CCO\nxyz\nc1ccccc1\nCCC\n")
    assert "CCC" in load_corpus(str(f)).smiles
    assert len(parsed) == 2  # another draw, then another file: parsed anew


def test_csv_and_gzip_corpora(tmp_path):
    (tmp_path / "a.csv").write_text("id,Smiles\n1,CCO\n2,xx\n")
    corpus = load_corpus(str(tmp_path / "a.csv"))
    assert corpus.smiles == ["CCO"] and corpus.invalid[0].line == 3
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress(b"mol\nCCN\n"))
    assert load_corpus(str(tmp_path / "b.csv.gz"), smiles_col="mol").smiles == ["CCN"]
    with pytest.raises(DataError, match="column not found"):
        load_corpus(str(tmp_path / "b.csv.gz"))


def test_moses_from_data_dir(shared_data):
    corpus = load_corpus("moses", n=50, seed=3, data_dir=shared_data)
    assert len(corpus) == 50 and corpus.n_total == 1_584_663
    assert corpus.source.name == "moses_train.csv.gz"


def test_unknown_corpus_lists_names():
    with pytest.raises(ConfigError, match=r"did you mean 'nci5k'.*guacamol:train"):
        load_corpus("nci5")


def _fake_guacamol(tmp_path, monkeypatch, md5=None):
    served = tmp_path / "served.smiles"
    served.write_text("CCO\nc1ccccc1\nC1CC\n")
    src = registry.CORPUS_SOURCES["guacamol:valid"]
    digest = md5 or hashlib.md5(served.read_bytes()).hexdigest()
    fake = dataclasses.replace(src, url=served.as_uri(), md5=digest)
    monkeypatch.setitem(registry.CORPUS_SOURCES, "guacamol:valid", fake)
    return fake


def test_guacamol_download_md5_verified_into_cache(tmp_path, monkeypatch):
    _fake_guacamol(tmp_path, monkeypatch)
    corpus = load_corpus("GuacaMol:valid", data_dir=tmp_path / "nothing")
    assert corpus.smiles == ["CCO", "c1ccccc1"] and corpus.n_skipped == 1
    assert corpus.source.name == "guacamol_v1_valid.smiles" and corpus.source.parent.name == "corpora"


def test_guacamol_md5_mismatch_rejects_the_file(tmp_path, monkeypatch):
    _fake_guacamol(tmp_path, monkeypatch, md5="f" * 32)
    with pytest.raises(ChecksumError, match="md5 mismatch"):
        load_corpus("guacamol:valid")
    from molw2s.data.fetch import cache_target

    assert not cache_target("corpora", "guacamol_v1_valid.smiles").exists()


def test_guacamol_offline(tmp_path, monkeypatch, no_wait):
    src = registry.CORPUS_SOURCES["guacamol:train"]
    gone = dataclasses.replace(src, url=(tmp_path / "gone").as_uri())
    monkeypatch.setitem(registry.CORPUS_SOURCES, "guacamol:train", gone)
    with pytest.raises(DataNotFoundError, match=r"(?s)guacamol_v1_train\.smiles.*could not be downloaded"):
        load_corpus("guacamol")
    with pytest.raises(DataNotFoundError, match="downloads are disabled"):
        load_corpus("guacamol", download=False)


def test_moses_has_no_download(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"(?s)moses_train\.csv\.gz.*local file only.*data import"):
        load_corpus("moses", data_dir=tmp_path)
