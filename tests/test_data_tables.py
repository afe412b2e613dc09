"""Reading CSV / .smi files: columns, line numbers, corrupt and truncated gzip."""

from __future__ import annotations

import gzip

import pytest

from molw2s.data.tables import read_csv_columns, read_header, read_smiles_lines
from molw2s.errors import DataError


def _gz(path, text: str):
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_columns_lines_and_case_insensitive_match(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text('\ufeffSMILES,Value,other\nCCO,1.5,a\n\n"C(O)C",2,b\nCCN\n', encoding="utf-8")
    table = read_csv_columns(f, ["smiles", "value"])
    assert table.header == ["SMILES", "Value", "other"]
    assert table.values == {"smiles": ["CCO", "C(O)C", "CCN"], "value": ["1.5", "2", ""]}
    assert table.lines == [2, 4, 5]  # the blank line 3 is not a row
    assert len(table) == 3


def test_missing_column_names_it_and_the_present_ones(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("smiles,y\nCCO,1\n")
    with pytest.raises(DataError) as exc:
        read_csv_columns(f, ["smiles", "label"])
    msg = str(exc.value)
    assert "'label'" in msg and "['smiles', 'y']" in msg and str(f) in msg
    assert exc.value.column == "label"


def test_gzip_detected_by_content_not_name(tmp_path):
    f = _gz(tmp_path / "plain_name.csv", "smiles,y\nCCO,1\n")
    assert read_csv_columns(f, ["y"]).values["y"] == ["1"]


def test_truncated_gzip_is_an_error_naming_the_file(tmp_path):
    rows = "".join(f"{'C' * (i % 7 + 1)}O,{i}\n" for i in range(5000))
    data = gzip.compress(("smiles,y\n" + rows).encode())
    f = tmp_path / "cut.csv.gz"
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.csv\.gz.*(truncated or corrupt)"):
        read_csv_columns(f, ["smiles"])


def test_corrupt_gzip_is_an_error(tmp_path):
    f = tmp_path / "bad.csv.gz"
    f.write_bytes(b"\x1f\x8b" + b"garbage that is not deflate data" * 10)
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_header(f)
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_smiles_lines(f)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="no header"):
        read_csv_columns(tmp_path / "empty.csv", ["smiles"])
    with pytest.raises(DataError, match="not found"):
        read_csv_columns(tmp_path / "nope.csv", ["smiles"])


def test_smi_lines_skip_header_and_blank_lines(tmp_path):
    f = tmp_path / "m.smi"
    f.write_text("SMILES Name\nCCO 1\n\nc1ccccc1\tbenzene\n")
    table = read_smiles_lines(f)
    assert table.values["smiles"] == ["CCO", "c1ccccc1"] and table.lines == [2, 4]
