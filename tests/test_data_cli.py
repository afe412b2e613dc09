"""``molw2s data info | fetch | import | validate`` through the real CLI app."""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest
from typer.testing import CliRunner

from molw2s.cli import app
from molw2s.data import registry

runner = CliRunner()


def _run(*args, columns: int = 200):
    return runner.invoke(app, list(args), env={"COLUMNS": str(columns)})


def test_help_lists_data_commands():
    result = _run("data", "--help")
    assert result.exit_code == 0
    for command in ("info", "fetch", "import", "validate"):
        assert command in result.output


def test_validate_prints_published_row_counts(moleculenet_dir):
    result = _run(
        "data",
        "validate",
        "--task",
        "ESOL",
        "--task",
        "FreeSolv",
        "--task",
        "Lipop",
        "--data-dir",
        str(moleculenet_dir),
    )
    assert result.exit_code == 0, result.output
    for name, rows, splits in (
        ("ESOL", 1128, "902/113/113"),
        ("FreeSolv", 642, "513/64/65"),
        ("Lipop", 4200, "3360/420/420"),
    ):
        # task, rows, expected, valid SMILES, invalid, bad labels
        assert re.search(rf"{name}\s*│\s*{rows}\s*│\s*{rows}\s*│\s*{rows}\s*│\s*0\s*│\s*0", result.output)
        assert re.search(rf"{name}\.random122\.json\s*│\s*{splits}\s*│\s*0\s*│\s*ok", result.output)
    assert "duplicate rows: [147, 779]" in result.output


def test_validate_reports_bad_rows_and_strict_fails(tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text("smiles,y\nCCO,1\nC1CC,2\nCCN,abc\nOCC,3\n")
    (tmp_path / "mine.bad.json").write_text('{"train": [0, 9], "valid": [], "test": []}')
    result = _run("data", "validate", "--task", str(f))
    assert result.exit_code == 0, result.output
    assert "invalid SMILES: row 1 (line 3): 'C1CC'" in result.output
    assert "bad labels: row 2 (line 4): 'abc': not a number" in result.output
    assert "duplicate rows: [0, 3]" in result.output
    assert "out of range" in result.output
    assert _run("data", "validate", "--task", str(f), "--strict").exit_code == 1


def test_validate_unknown_or_missing_task_fails(tmp_path):
    result = _run("data", "validate", "--task", "ESLO", "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "did you mean 'ESOL'" in result.output
    result = _run("data", "validate", "--task", "Lipop", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "molw2s data import DIR" in result.output and "MOLW2S_DATA_DIR" in result.output


def test_validate_corpus(tmp_path):
    (tmp_path / "c.smi").write_text("CCO\nxx\n")
    (tmp_path / "t.csv").write_text("smiles,y\nCCO,1\n")
    args = ("data", "validate", "--task", str(tmp_path / "t.csv"), "--corpus", str(tmp_path / "c.smi"))
    result = _run(*args)
    assert result.exit_code == 0 and "1 of 2 SMILES invalid" in result.output
    assert "row 1 (line 2): 'xx'" in result.output
    assert _run(*args, "--strict").exit_code == 1
    assert (
        _run(
            "data", "validate", "--task", str(tmp_path / "t.csv"), "--corpus", "moses", "--data-dir", str(tmp_path)
        ).exit_code
        == 1
    )


def test_info_shows_presence(moleculenet_dir):
    # wide enough that no path wraps, wherever Python's site-packages (and RDKit's NCI file) live
    result = _run("data", "info", "--data-dir", str(moleculenet_dir), columns=1000)
    assert result.exit_code == 0
    assert str(moleculenet_dir / "ESOL.csv.gz") in result.output
    assert "missing" in result.output  # GuacaMol is not there
    assert "first_5K.smi" in result.output and "05ad85d871958a05c02ab51a4fde8530" in result.output


def test_import_and_fetch(tmp_path, moleculenet_dir, monkeypatch):
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(moleculenet_dir / "ESOL.csv.gz", d)
    (d / "guacamol_v1_all.smiles").write_text("CCO\n")
    result = _run("data", "import", str(d))
    assert result.exit_code == 1  # the GuacaMol file fails its md5
    assert re.search(r"ESOL\.csv\.gz.*imported", result.output) and "md5 mismatch" in result.output

    served = tmp_path / "Lipophilicity.csv"
    shutil.copy(moleculenet_dir / "Lipop.csv.gz", served)
    src = registry.TASK_SOURCES["Lipop"]
    monkeypatch.setitem(registry.TASK_SOURCES, "Lipop", dataclasses.replace(src, url=served.as_uri()))
    result = _run("data", "fetch", "--task", "lipop")
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "Lipophilicity.csv" in result.output
    monkeypatch.setattr("molw2s.data.download.sleep", lambda s: None)
    gone = dataclasses.replace(src, url=(tmp_path / "gone.csv").as_uri())
    monkeypatch.setitem(registry.TASK_SOURCES, "Lipop", gone)
    result = _run("data", "fetch", "--task", "Lipop", "--force")
    assert result.exit_code == 1 and "failed" in result.output


@pytest.mark.parametrize(
    "args",
    [("data", "fetch", "--task", "nci_logp"), ("data", "fetch", "--corpus", "zinc"), ("data", "fetch", "-c", "nci5k")],
)
def test_fetch_rejects_unknown_names(args):
    result = _run(*args)
    assert result.exit_code != 0 and "valid" in str(result.exception)
