"""Splits: ChemBench reproduction, scaffold rules, split-file validation, mapping, W2S draw."""

from __future__ import annotations

import json

import numpy as np
import pytest

from molw2s.data.config import SplitSpec
from molw2s.data.prepare import split_task
from molw2s.data.split_files import load_split_file, paper_split, save_split_file
from molw2s.data.splits import (
    Split,
    murcko_scaffold,
    random_split,
    scaffold_split,
    to_positions,
    validate_split,
    w2s_split,
)
from molw2s.data.tasks import load_task
from molw2s.errors import ConfigError, DataError

ROWS = {"ESOL": 1128, "FreeSolv": 642, "Lipop": 4200}


@pytest.mark.parametrize("task", sorted(ROWS))
@pytest.mark.parametrize("seed", [122, 123, 124])
def test_random_split_reproduces_chembench_files(moleculenet_dir, task, seed):
    published = json.loads((moleculenet_dir / "splits" / f"{task}.random{seed}.json").read_text())
    assert random_split(ROWS[task], (0.8, 0.1, 0.1), seed).as_dict() == published


def test_random_split_sizes_cover_and_determinism():
    split = random_split(11, (0.6, 0.2, 0.2), seed=5)
    assert split.sizes() == {"train": 6, "valid": 2, "test": 3}  # int(6.6), int(8.8) - 6, rest
    assert sorted(np.concatenate([split.train, split.valid, split.test]).tolist()) == list(range(11))
    assert random_split(11, (0.6, 0.2, 0.2), 5).as_dict() == split.as_dict()
    assert random_split(11, (0.6, 0.2, 0.2), 6).as_dict() != split.as_dict()
    for bad in [(0.8, 0.1), (0.8, 0.3, 0.1), (1.2, -0.1, -0.1)]:
        with pytest.raises(ConfigError, match="summing to 1"):
            random_split(10, bad)


# 10 benzenes, 5 cyclohexanes, 3 pyridines, 2 acyclic
SCAFFOLD_SET = (
    [f"c1ccccc1{'C' * k}" for k in range(10)]
    + [f"C1CCCCC1{'O' * 1}{'C' * k}" for k in range(5)]
    + [f"c1ccncc1{'N' if k else ''}{'C' * k}" for k in range(3)]
    + ["CCO", "CCCN"]
)


def test_scaffold_split_deepchem_rule_known_answer():
    assert murcko_scaffold("c1ccccc1CCO") == "c1ccccc1" and murcko_scaffold("CCO") == ""
    split = scaffold_split(SCAFFOLD_SET, (0.5, 0.3, 0.2))
    # largest group first: benzenes (10) fill train; cyclohexanes (5) fit train+valid <= 15
    # but not train <= 10; pyridines (3) would exceed 15 -> test; acyclic (2) -> test
    assert split.train.tolist() == list(range(10))
    assert split.valid.tolist() == list(range(10, 15))
    assert split.test.tolist() == list(range(15, 20))


def test_scaffold_groups_never_straddle_parts_and_balanced_is_seeded(moleculenet_dir):
    smiles = load_task("ESOL", data_dir=moleculenet_dir).smiles
    scaffolds = [murcko_scaffold(s) for s in smiles]
    for seed in (None, 0, 1):
        split = scaffold_split(smiles, seed=seed)
        part_of = {}
        for name, idx in split.as_dict().items():
            for i in idx:
                assert part_of.setdefault(scaffolds[i], name) == name
        assert sum(split.sizes().values()) == len(smiles)
        assert abs(split.sizes()["train"] - 0.8 * len(smiles)) < 20
    assert scaffold_split(smiles, seed=0).as_dict() == scaffold_split(smiles, seed=0).as_dict()
    assert scaffold_split(smiles, seed=0).as_dict() != scaffold_split(smiles, seed=1).as_dict()
    with pytest.raises(DataError, match="scaffold"):
        scaffold_split(["CCO", "C1CC"])


def _write(tmp_path, obj, name="s.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


@pytest.mark.parametrize(
    "parts, message",
    [
        ({"train": [0, 1], "valid": [2], "test": [10]}, r"'test'.*out of range for 10 rows.*\[10\]"),
        ({"train": [0, -1], "valid": [2], "test": [3]}, r"'train'.*out of range.*\[-1\]"),
        ({"train": [0, 1, 2], "valid": [2, 3], "test": [4]}, r"'train' and 'valid' overlap in 1.*\[2\]"),
        ({"train": [0, 0], "valid": [], "test": []}, r"'train' repeats indices \[0\]"),
        ({"train": [0, 1.5], "valid": [], "test": []}, r"non-integer.*1\.5"),
        ({"train": [True], "valid": [], "test": []}, r"non-integer"),
        ({"train": ["3"], "valid": [], "test": []}, r"non-integer"),
        ({"train": [0], "valid": []}, r"missing \['test'\]"),
        ({"train": [0], "valid": [], "test": [], "extra": []}, r"unexpected \['extra'\]"),
        ({"train": 5, "valid": [], "test": []}, r"'train' must be a list"),
        ([[0], [1], [2]], r"JSON object"),
    ],
)
def test_bad_split_files_are_rejected(tmp_path, parts, message):
    path = _write(tmp_path, parts)
    with pytest.raises(DataError, match=message) as exc:
        load_split_file(path, 10)
    assert str(path) in str(exc.value)


def test_split_file_round_trip_and_invalid_json(tmp_path):
    split = random_split(20, seed=3)
    save_split_file(split, tmp_path / "x.json")
    assert load_split_file(tmp_path / "x.json", 20).as_dict() == split.as_dict()
    with pytest.raises(DataError, match="not valid JSON"):
        load_split_file(_write(tmp_path, '{"train": [1,'), 20)
    with pytest.raises(DataError, match="not found"):
        load_split_file(tmp_path / "none.json", 20)


def test_paper_split_reads_files_and_regenerates_when_absent(moleculenet_dir, tmp_path):
    published = json.loads((moleculenet_dir / "splits" / "FreeSolv.random123.json").read_text())
    assert paper_split("FreeSolv", 123, moleculenet_dir).as_dict() == published
    (tmp_path / "FreeSolv.csv.gz").write_bytes((moleculenet_dir / "FreeSolv.csv.gz").read_bytes())
    assert paper_split("freesolv", 123, tmp_path).as_dict() == published  # no split file here
    (tmp_path / "splits").mkdir()
    _write(tmp_path / "splits", {"train": [0], "valid": [1], "test": [642]}, "FreeSolv.random123.json")
    with pytest.raises(DataError, match="out of range"):
        paper_split("FreeSolv", 123, tmp_path)


def test_to_positions_maps_rows_and_reports_dropped():
    split = Split(np.array([0, 2, 5]), np.array([1, 3]), np.array([4, 6]))
    row_index = np.array([0, 1, 3, 4, 6])  # rows 2 and 5 were excluded (invalid SMILES ...)
    mapped = to_positions(split, row_index)
    assert mapped.split.as_dict() == {"train": [0], "valid": [1, 2], "test": [3, 4]}
    assert {k: v.tolist() for k, v in mapped.dropped.items()} == {"train": [2, 5]}
    assert mapped.n_dropped() == 2
    for part in ("train", "valid", "test"):
        assert set(row_index[getattr(mapped.split, part)]) <= set(getattr(split, part))


def test_w2s_split_disjoint_sized_nested_and_seeded():
    train = np.arange(100, 200)
    draw = w2s_split(train, 30, 0.5, seed=7)
    assert len(draw.weak) == 30 and len(draw.strong) == 50
    assert not set(draw.weak) & set(draw.strong) and set(draw.weak) | set(draw.strong) <= set(train)
    assert w2s_split(train, 30, 0.5, seed=7).weak.tolist() == draw.weak.tolist()
    assert w2s_split(train, 30, 0.5, seed=8).weak.tolist() != draw.weak.tolist()
    bigger = w2s_split(train, 40, 60, seed=7)
    assert set(draw.weak) <= set(bigger.weak) and set(draw.strong) <= set(bigger.strong)
    assert len(w2s_split(train, 0.5, 0.5).weak) == 50


@pytest.mark.parametrize(
    "n_weak, n_strong, message",
    [
        (60, 50, "exceeds the 100"),
        (0, 10, "at least 1"),
        (0.001, 10, "at least 1"),
        (1.5, 10, r"in \(0, 1\]"),
        (True, 10, "int count or a float"),
        ("10", 10, "int count or a float"),
    ],
)
def test_w2s_split_errors(n_weak, n_strong, message):
    with pytest.raises(ConfigError, match=message):
        w2s_split(np.arange(100), n_weak, n_strong)


def test_validate_split_accepts_numpy():
    split = validate_split({"train": np.arange(3), "valid": [np.int64(3)], "test": []}, 5)
    assert split.sizes() == {"train": 3, "valid": 1, "test": 0}


def test_to_positions_merged_duplicates_follow_their_twin_into_the_earliest_part():
    # rows 1 and 4 hold one molecule (kept: row 1), rows 2, 5, 6 another (kept: row 2)
    split = Split(np.array([0, 4]), np.array([1, 2, 3]), np.array([5, 6, 7]))
    row_index = np.array([0, 1, 2, 3, 7])
    duplicates = [np.array([1, 4]), np.array([2, 5, 6])]
    mapped = to_positions(split, row_index, duplicates)
    assert mapped.split.as_dict() == {"train": [0, 1], "valid": [2, 3], "test": [4]}
    assert {k: v.tolist() for k, v in mapped.moved.items()} == {"valid": [1], "test": [5, 6]}
    assert mapped.n_moved() == 3 and mapped.n_dropped() == 0
    legacy = to_positions(split, row_index)  # without the groups, the twins' rows are dropped
    assert legacy.split.as_dict() == {"train": [0], "valid": [1, 2, 3], "test": [4]} and legacy.n_dropped() == 3
    kept = to_positions(split, np.arange(8), duplicates)  # policy keep: every row is its own position
    assert kept.split.as_dict() == split.as_dict() and not kept.moved


@pytest.mark.parametrize("seed", [122, 123, 124])
def test_paper_split_with_merged_duplicates_puts_each_molecule_in_one_part(moleculenet_dir, seed):
    esol = load_task("ESOL", data_dir=moleculenet_dir)  # default policy mean: 11 groups merged
    rows = paper_split("ESOL", seed, moleculenet_dir)
    mapped = to_positions(rows, esol.row_index, esol.duplicates)
    parts = {p: {esol.smiles[i] for i in getattr(mapped.split, p)} for p in ("train", "valid", "test")}
    assert not (parts["train"] & parts["valid"] or parts["train"] & parts["test"] or parts["valid"] & parts["test"])
    assert sum(mapped.split.sizes().values()) == len(esol) == 1117 and mapped.n_dropped() == 0
    group_of = {int(r): g for g in esol.duplicates for r in g}
    for part, moved in mapped.moved.items():
        for row in moved.tolist():  # its molecule sits in an earlier part, from which a twin came
            assert esol.smiles[int(np.flatnonzero(esol.row_index == group_of[row][0])[0])] in (
                parts["train"] if part == "valid" else parts["train"] | parts["valid"]
            )
    unmoved = {p: set(getattr(rows, p).tolist()) - set(mapped.moved.get(p, np.array([])).tolist()) for p in parts}
    for part in parts:  # every other row indexes its own molecule or its kept twin, in its own part
        for row in unmoved[part]:
            kept_row = int(group_of[row][0]) if row in group_of else row
            assert esol.smiles[int(np.flatnonzero(esol.row_index == kept_row)[0])] in parts[part]


def test_split_task_file_split_with_twins_across_parts(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("smiles,y\nCCO,1\nCCCO,2\nOCC,3\nCCCCO,4\nCCCCCO,5\nOCCC,6\n")  # rows 0/2 and 1/5 are twins
    save_split_file(Split(np.array([0, 1, 3, 4]), np.array([2]), np.array([5])), tmp_path / "s.json")
    spec = SplitSpec(method="file", path=tmp_path / "s.json", n_weak=2, n_strong=2)
    task = load_task(str(f))
    out = split_task(task, spec, 0)
    assert task.y.tolist() == [2.0, 4.0, 4.0, 5.0] and task.row_index.tolist() == [0, 1, 3, 4]
    assert out.split.as_dict() == {"train": [0, 1, 2, 3], "valid": [], "test": []} and not out.dropped
    leaky = split_task(load_task(str(f), duplicates="keep"), spec, 0)
    assert leaky.split.as_dict() == {"train": [0, 1, 3, 4], "valid": [2], "test": [5]}


def test_split_task_maps_file_rows_and_draws_w2s(moleculenet_dir, tmp_path):
    esol = load_task("ESOL", data_dir=moleculenet_dir)
    paper = split_task(esol, SplitSpec(method="paper"), 122, data_dir=moleculenet_dir)
    same = split_task(esol, SplitSpec(method="random"), 122)
    assert paper.split.as_dict() == same.split.as_dict() and not paper.dropped
    assert len(paper.w2s.weak) == len(paper.w2s.strong) == len(paper.split.train) // 2 == 447
    assert set(paper.w2s.weak) <= set(paper.split.train.tolist())
    f = tmp_path / "t.csv"
    f.write_text("smiles,y\n" + "".join(f"{'C' * (i + 1)}O,{i}\n" for i in range(9)) + "C1CC,9\n")
    task = load_task(str(f))
    save_split_file(Split(np.arange(8), np.array([8]), np.array([9])), tmp_path / "s.json")
    out = split_task(task, SplitSpec(method="file", path=tmp_path / "s.json", n_weak=4, n_strong=4), 0)
    assert out.split.test.tolist() == [] and out.dropped["test"].tolist() == [9]
    assert len(out.w2s.weak) == 4
    scaf = split_task(esol, SplitSpec(method="scaffold_balanced"), 3)
    assert scaf.split.as_dict() == scaffold_split(esol.smiles, seed=3).as_dict() and not scaf.dropped
