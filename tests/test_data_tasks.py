"""Tasks: both file layouts, demo tasks, user CSVs, and every kind of bad row."""

from __future__ import annotations

import csv
import dataclasses
import gzip

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen

from molw2s.data import registry
from molw2s.data.tasks import list_tasks, load_task
from molw2s.errors import ConfigError, DataError, DataNotFoundError

EXPECTED = {"ESOL": 1128, "FreeSolv": 642, "Lipop": 4200}


def _rows(path):
    with gzip.open(path, "rt") as fh:
        return list(csv.reader(fh))


def _write_csv(path, rows):
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _moleculenet_layout(moleculenet_dir, folder):
    """Write ESOL in MoleculeNet's delaney-processed.csv layout (extra columns, other order)."""
    header, *body = _rows(moleculenet_dir / "ESOL.csv.gz")
    rows = [["Compound ID", "ESOL predicted log solubility in mols per litre", header[1], "smiles"]]
    rows += [[f"mol{i}", "0.0", y, s] for i, (s, y) in enumerate(body)]
    return _write_csv(folder / "delaney-processed.csv", rows)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_tasks_load_with_published_row_counts(moleculenet_dir, name):
    task = load_task(name, data_dir=moleculenet_dir, download=False, duplicates="keep")
    _header, *body = _rows(moleculenet_dir / f"{name}.csv.gz")
    assert task.n_rows == len(task) == EXPECTED[name] == len(body)
    assert task.row_index.tolist() == list(range(EXPECTED[name]))
    np.testing.assert_array_equal(task.y, [float(r[1]) for r in body])
    assert task.y.dtype == np.float64 and not task.invalid and not task.bad_labels
    assert task.smiles[1] == Chem.MolToSmiles(Chem.MolFromSmiles(body[1][0]))


def test_esol_duplicates_are_reported_and_merged_by_default(moleculenet_dir):
    kept = load_task("esol", data_dir=moleculenet_dir, duplicates="keep")
    assert len(kept.duplicates) == 11 and len(kept) == 1128
    for group in kept.duplicates:
        assert len({kept.smiles[int(r)] for r in group}) == 1
    assert "11 molecule(s) appear more than once" in kept.report()
    task = load_task("esol", data_dir=moleculenet_dir)  # default: mean
    assert task.duplicate_policy == "mean" and len(task) == 1128 - 11 and len(set(task.smiles)) == len(task)
    assert [g.tolist() for g in task.duplicates] == [g.tolist() for g in kept.duplicates]
    assert len(task.conflicting) == 6 and "6 of them with conflicting labels" in task.report()
    for group in task.duplicates:
        (pos,) = np.flatnonzero(np.isin(task.row_index, group))
        assert task.row_index[pos] == group[0] and task.y[pos] == pytest.approx(kept.y[group].mean())


def test_moleculenet_layout_gives_the_same_task(moleculenet_dir, tmp_path):
    _moleculenet_layout(moleculenet_dir, tmp_path)
    ours = load_task("ESOL", data_dir=tmp_path, download=False)
    ref = load_task("ESOL", data_dir=moleculenet_dir, download=False)
    assert ours.source.name == "delaney-processed.csv"
    assert ours.smiles == ref.smiles
    np.testing.assert_array_equal(ours.y, ref.y)


def test_download_from_canonical_url_into_cache(moleculenet_dir, tmp_path, monkeypatch):
    served = _moleculenet_layout(moleculenet_dir, tmp_path)
    src = registry.TASK_SOURCES["ESOL"]
    monkeypatch.setitem(registry.TASK_SOURCES, "ESOL", dataclasses.replace(src, url=served.as_uri()))
    task = load_task("ESOL", data_dir=tmp_path / "empty")
    assert task.n_rows == 1128 and "moleculenet" in str(task.source) and task.source != served
    assert task.source.read_bytes() == served.read_bytes()


def test_offline_without_local_copy_names_file_and_three_ways(tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr("molw2s.data.download.sleep", waits.append)
    src = registry.TASK_SOURCES["FreeSolv"]
    gone = (tmp_path / "no-such-file.csv").as_uri()
    monkeypatch.setitem(registry.TASK_SOURCES, "FreeSolv", dataclasses.replace(src, url=gone))
    with pytest.raises(DataNotFoundError) as exc:
        load_task("FreeSolv", data_dir=tmp_path)
    msg = str(exc.value)
    for needle in (
        "FreeSolv.csv.gz",
        "SAMPL.csv",
        str(tmp_path),
        "could not be downloaded",
        "MOLW2S_DATA_DIR",
        "--data-dir",
        "molw2s data import DIR",
    ):
        assert needle in msg
    assert waits == [1.0, 2.0, 4.0]  # retried with exponential backoff
    with pytest.raises(DataNotFoundError, match="downloads are disabled"):
        load_task("FreeSolv", data_dir=tmp_path, download=False)


def test_unknown_task_lists_valid_names():
    with pytest.raises(ConfigError) as exc:
        load_task("ESLO")
    msg = str(exc.value)
    assert "did you mean 'ESOL'" in msg
    for name in ("ESOL", "FreeSolv", "Lipop", "nci_logp", "nci_tpsa"):
        assert name in msg
    assert set(registry.task_names()) < set(list_tasks()) and "csv" in list_tasks()


def test_bad_labels_error_names_file_row_line_and_column(tmp_path):
    f = _write_csv(
        tmp_path / "t.csv",
        [["smiles", "y"], ["CCO", "1"], ["CCC", "abc"], ["CCN", "nan"], ["CCCl", "inf"], ["CCBr", ""], ["CCI", "-2.5"]],
    )
    with pytest.raises(DataError) as exc:
        load_task(str(f))
    err = exc.value
    assert (err.path, err.row, err.column) == (str(f), 1, "y")
    assert "line 3" in str(err) and "'abc'" in str(err) and "3 more" in str(err)
    task = load_task(str(f), bad_labels="drop")
    assert task.smiles == ["CCO", "CCI"] and task.y.tolist() == [1.0, -2.5]
    assert task.row_index.tolist() == [0, 5]
    assert [(b.row, b.reason) for b in task.bad_labels] == [
        (1, "not a number"),
        (2, "not a finite number"),
        (3, "not a finite number"),
        (4, "empty"),
    ]


def test_invalid_and_empty_smiles_are_excluded_and_reported(tmp_path):
    f = _write_csv(tmp_path / "t.csv", [["SMILES", "logp"], ["CCO", "1"], ["C1CC", "2"], ["", "3"], ["c1ccccc1", "4"]])
    task = load_task(str(f))
    assert task.smiles == ["CCO", "c1ccccc1"] and task.row_index.tolist() == [0, 3]
    assert [(i.row, i.line) for i in task.invalid] == [(1, 3), (2, 4)]
    assert "unclosed ring" in task.invalid[0].reason and task.invalid[1].reason == "empty SMILES"
    assert "2 of 4 SMILES invalid" in task.report()
    with pytest.raises(DataError, match=r"(?s)strict mode.*row 1 \(line 3\)"):
        load_task(str(f), strict=True)


def test_duplicate_policies(tmp_path):
    f = _write_csv(tmp_path / "t.csv", [["smiles", "y"], ["CCO", "1"], ["OCC", "3"], ["CCN", "5"], ["C(O)C", "8"]])
    keep = load_task(str(f), duplicates="keep")
    assert len(keep) == 4 and [g.tolist() for g in keep.duplicates] == [[0, 1, 3]]
    default = load_task(str(f))
    assert default.duplicate_policy == "mean" and default.y.tolist() == [4.0, 5.0]
    assert [g.tolist() for g in default.conflicting] == [[0, 1, 3]]
    first = load_task(str(f), duplicates="first")
    assert first.smiles == ["CCO", "CCN"] and first.y.tolist() == [1, 5] and first.row_index.tolist() == [0, 2]
    mean = load_task(str(f), duplicates="mean")
    assert mean.y.tolist() == [4.0, 5.0] and mean.row_index.tolist() == [0, 2]
    with pytest.raises(DataError, match=r"(?s)duplicated.*rows \[0, 1, 3\]: CCO"):
        load_task(str(f), duplicates="error")


def test_salts_can_be_stripped_before_duplicate_detection(tmp_path):
    from molw2s.chem.standardize import StandardizeOptions

    f = _write_csv(tmp_path / "t.csv", [["smiles", "y"], ["CC(=O)O", "1"], ["CC(=O)[O-].[Na+]", "2"]])
    assert not load_task(str(f)).duplicates
    opts = StandardizeOptions(largest_fragment=True, neutralize=True)
    task = load_task(str(f), standardize=opts)
    assert task.smiles == ["CC(=O)O"] and task.y.tolist() == [1.5] and len(task.duplicates) == 1


def test_user_csv_columns(tmp_path):
    f = _write_csv(tmp_path / "t.csv", [["id", "mol", "a", "b"], ["x", "CCO", "1", "2"]])
    assert load_task(str(f), smiles_col="mol", label_col="b").y.tolist() == [2.0]
    with pytest.raises(DataError, match="no 'smiles' column"):
        load_task(str(f))
    with pytest.raises(DataError, match="pass label_col"):
        load_task(str(f), smiles_col="mol")
    with pytest.raises(DataError) as exc:
        load_task(str(f), smiles_col="mol", label_col="c")
    assert exc.value.column == "c" and "'id', 'mol', 'a', 'b'" in str(exc.value)
    two = _write_csv(tmp_path / "two.csv", [["smiles", "pIC50"], ["CCO", "6.1"]])
    assert load_task(str(two)).label_col == "pIC50"
    with pytest.raises(DataError, match="not found"):
        load_task(str(tmp_path / "absent.csv"))


def test_missing_label_column_in_known_task(moleculenet_dir, tmp_path):
    _header, *body = _rows(moleculenet_dir / "FreeSolv.csv.gz")
    _write_csv(tmp_path / "FreeSolv.csv", [["smiles", "calc"], *body])
    with pytest.raises(DataError) as exc:
        load_task("FreeSolv", data_dir=tmp_path, download=False)
    assert exc.value.column == "expt" and "FreeSolv.csv" in str(exc.value)


def test_demo_task_is_rdkit_property_of_nci5k():
    task = load_task("nci_logp")
    assert task.n_rows == 4999 and len(task.invalid) == 8 and len(task.duplicates) == 88
    assert len(task) + sum(len(g) - 1 for g in task.duplicates) == 4991 and not task.conflicting
    assert task.source.name == "first_5K.smi"
    for i in (0, 100, 4000):
        assert task.y[i] == pytest.approx(Crippen.MolLogP(Chem.MolFromSmiles(task.smiles[i])))
    nci = registry.nci5k_path().read_text().splitlines()
    row = int(task.row_index[100])
    assert Chem.MolToSmiles(Chem.MolFromSmiles(nci[row].split()[0])) == task.smiles[100]
