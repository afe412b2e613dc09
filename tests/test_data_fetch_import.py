"""The cache: ``import`` verifies and copies, ``fetch`` downloads; bad files never enter it."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import shutil

import pytest

from molw2s.data import registry
from molw2s.data.fetch import cache_target, fetch_corpus, fetch_task
from molw2s.data.importer import import_directory
from molw2s.data.tasks import load_task
from molw2s.errors import DataError, MolW2SError


@pytest.fixture
def source_dir(tmp_path, moleculenet_dir):
    """A user's directory: ESOL + its split, a broken FreeSolv, bad split files, a stray file."""
    d = tmp_path / "incoming"
    (d / "splits").mkdir(parents=True)
    shutil.copy(moleculenet_dir / "ESOL.csv.gz", d)
    shutil.copy(moleculenet_dir / "splits" / "ESOL.random122.json", d / "splits")
    good = (moleculenet_dir / "FreeSolv.csv.gz").read_bytes()
    (d / "FreeSolv.csv.gz").write_bytes(good[: len(good) // 2])  # truncated gzip
    (d / "splits" / "ESOL.overlap.json").write_text(json.dumps({"train": [0, 1], "valid": [1], "test": []}))
    (d / "splits" / "Lipop.random122.json").write_text(json.dumps({"train": [0], "valid": [], "test": []}))
    (d / "guacamol_v1_test.smiles").write_text("CCO\n")  # wrong md5
    (d / "notes.txt").write_text("hello")
    return d


def test_import_verifies_each_file(source_dir):
    results = {r.source.name: r for r in import_directory(source_dir)}
    assert results["ESOL.csv.gz"].status == "imported" and results["ESOL.csv.gz"].detail == "1128 rows"
    assert results["ESOL.random122.json"].status == "imported"
    assert results["ESOL.random122.json"].detail == "902/113/113 train/valid/test"
    assert results["FreeSolv.csv.gz"].status == "rejected"
    assert "truncated or corrupt" in results["FreeSolv.csv.gz"].detail
    assert results["ESOL.overlap.json"].status == "rejected" and "overlap" in results["ESOL.overlap.json"].detail
    assert results["Lipop.random122.json"].status == "rejected"
    assert "no Lipop data file" in results["Lipop.random122.json"].detail
    assert results["guacamol_v1_test.smiles"].status == "rejected"
    assert "md5 mismatch" in results["guacamol_v1_test.smiles"].detail
    assert results["notes.txt"].status == "ignored"
    assert cache_target("moleculenet", "ESOL.csv.gz").is_file()
    assert cache_target("moleculenet/splits", "ESOL.random122.json").is_file()
    for rejected in ("FreeSolv.csv.gz", "ESOL.overlap.json"):
        assert not cache_target("moleculenet", rejected).exists()
        assert not cache_target("moleculenet/splits", rejected).exists()
    assert not cache_target("corpora", "guacamol_v1_test.smiles").exists()
    # imported data is found without --data-dir; a second import is a no-op
    assert load_task("ESOL", download=False).n_rows == 1128
    again = {r.source.name: r.status for r in import_directory(source_dir)}
    assert again["ESOL.csv.gz"] == "up to date"


def test_import_rejects_wrong_row_count(tmp_path, moleculenet_dir):
    d = tmp_path / "in"
    d.mkdir()
    with gzip.open(moleculenet_dir / "Lipop.csv.gz", "rt") as fh:
        lines = fh.readlines()
    (d / "Lipophilicity.csv").write_text("".join(lines[:-1]))
    (result,) = import_directory(d)
    assert result.status == "rejected" and "should have 4200 rows, found 4199" in result.detail
    with pytest.raises(DataError, match="not a directory"):
        import_directory(tmp_path / "missing")


def test_import_guacamol_with_matching_md5(tmp_path, monkeypatch):
    d = tmp_path / "in"
    d.mkdir()
    (d / "guacamol_v1_test.smiles").write_text("CCO\nCCN\n")
    src = registry.CORPUS_SOURCES["guacamol:test"]
    md5 = hashlib.md5(b"CCO\nCCN\n").hexdigest()
    monkeypatch.setitem(registry.CORPUS_SOURCES, "guacamol:test", dataclasses.replace(src, md5=md5))
    (result,) = import_directory(d)
    assert (result.status, result.detail) == ("imported", "md5 ok")


def test_fetch_task_verifies_structure(tmp_path, monkeypatch):
    served = tmp_path / "SAMPL.csv"
    served.write_text("iupac,smiles,expt,calc\nmethane,C,2.0,1.9\n")  # 1 row, not 642
    src = registry.TASK_SOURCES["FreeSolv"]
    monkeypatch.setitem(registry.TASK_SOURCES, "FreeSolv", dataclasses.replace(src, url=served.as_uri()))
    with pytest.raises(DataError, match="should have 642 rows, found 1"):
        fetch_task("FreeSolv", progress=False)
    assert not cache_target("moleculenet", "SAMPL.csv").exists()
    monkeypatch.setitem(registry.TASK_SOURCES, "FreeSolv", dataclasses.replace(src, url=served.as_uri(), n_rows=1))
    path = fetch_task("FreeSolv", progress=False)
    assert path == cache_target("moleculenet", "SAMPL.csv") and path.read_text() == served.read_text()
    served.unlink()  # already cached: no second download
    assert fetch_task("FreeSolv", progress=False) == path


def test_fetch_moses_is_refused():
    with pytest.raises(MolW2SError, match="local file only"):
        fetch_corpus("moses")
