"""Replays every failure of the hostile-user audit (issue 15); each test fails if its case returns.

Corrupt caches are moved aside and recomputed, task identities are unique, featurisation
is bounded, paths stay inside their folders, failures are one clean line, and results
that cannot mean anything are flagged.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from molw2s.cli import describe_error
from molw2s.config import apply_overrides
from molw2s.data.config import TaskSpec
from molw2s.data.tasks import load_task
from molw2s.encoders.cache import embedding_cache_path
from molw2s.encoders.embed import compute_task_embedding, parse_encoder_spec
from molw2s.encoders.model_files import MODEL_FILE, load_pretrained
from molw2s.errors import ConfigError, DataError, MolW2SError
from molw2s.experiment.cell import CellSplit
from molw2s.experiment.config import ExperimentConfig
from molw2s.experiment.evidence import correlation_tests
from molw2s.experiment.summary import interval_text
from molw2s.experiment.sweep import sweep_task
from molw2s.io import load_npy_checked, read_json_checked, safe_filename, write_text_atomic
from molw2s.pretraining.config import FamilyConfig
from molw2s.pretraining.family import family_models, pretrain_family
from molw2s.theory.synthetic import make_family
from molw2s.w2s.validation import as_matrix, as_vector

TINY_FAMILY = {
    "name": "tiny",
    "strong": "m",
    "data": {"corpus": {"name": "nci5k", "n": 120}, "val_fraction": 0.2, "physchem": False},
    "train": {"batch_size": 8, "warmup_steps": 2, "checkpoint_every": 4, "eval_every": 4, "num_threads": 1},
    "members": [
        {
            "name": "m",
            "model": {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32},
            "steps": 8,
            "snapshots": [4],
        }
    ],
}


def _flip_byte(path: Path, offset: int = -3) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _csv(path: Path, smiles: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("smiles,y\n" + "".join(f"{s},{i * 0.5}\n" for i, s in enumerate(smiles)))
    return path


# -- 1. verified caches ----------------------------------------------------------------


def test_bit_flipped_snapshot_is_moved_aside_and_retrained_identically(tmp_path):
    family = FamilyConfig.model_validate(TINY_FAMILY)
    pretrain_family(family, tmp_path, progress=False)
    snapshot = family_models(family, tmp_path)["m@4"]
    original = (snapshot / MODEL_FILE).read_bytes()
    _flip_byte(snapshot / MODEL_FILE)
    with pytest.raises(MolW2SError, match="corrupt model"):
        load_pretrained(snapshot)  # never used
    result = pretrain_family(family, tmp_path, progress=False)
    assert {row.name: row.status for row in result.rows}["m"] == "trained"
    assert (snapshot / MODEL_FILE).read_bytes() == original  # deterministic retraining
    assert (snapshot.parent / f"{snapshot.name}.corrupt").is_dir()  # moved aside, not deleted
    load_pretrained(snapshot)


def test_bit_flipped_or_truncated_embedding_is_recomputed(tmp_path):
    task = load_task(str(_csv(tmp_path / "t.csv", ["CCO", "CCN", "c1ccccc1", "CC(=O)O"])))
    encoder = parse_encoder_spec("ecfp4-256")
    first = compute_task_embedding(encoder, task)
    assert first.path is not None
    _flip_byte(first.path)
    again = compute_task_embedding(encoder, task)
    assert not again.from_cache and np.array_equal(again.values, first.values)
    assert first.path.with_name(first.path.name + ".corrupt").is_file()
    first.path.write_bytes(first.path.read_bytes()[:40])  # truncated
    assert load_npy_checked(first.path) is None
    assert np.array_equal(compute_task_embedding(encoder, task).values, first.values)
    assert compute_task_embedding(encoder, task).from_cache  # and now it is trusted again
    assert embedding_cache_path("x").parent == first.path.parent


@pytest.mark.parametrize("damage", ["truncate", "empty", "braces", "no_digest"])
def test_damaged_cell_json_is_recomputed_not_a_traceback(tmp_path, damage):
    fam = make_family(300, r=3, tail_dim=40, seed=0)
    reps = {"strong": fam.strong(), "w0": fam.weak(0), "w1": fam.weak(3)}
    config = ExperimentConfig(name="x", strong="strong", weak=["w0", "w1"], tasks=["t"])
    split = CellSplit(0, np.arange(0, 100), np.arange(100, 200), np.arange(200, 300))
    rows = sweep_task("t", fam.y, reps, [split], config, tmp_path, progress=False)
    path = sorted(tmp_path.glob("*.json"))[0]
    text = path.read_text()
    damaged = {
        "truncate": text[: len(text) // 2],
        "empty": "",
        "braces": "{}",
        "no_digest": json.dumps({k: v for k, v in json.loads(text).items() if k != "_sha256"}),
    }[damage]
    path.write_text(damaged)
    again = sweep_task("t", fam.y, reps, [split], config, tmp_path, progress=False)
    assert [r["M"] for r in again] == [r["M"] for r in rows]
    assert read_json_checked(path) is not None and path.with_name(path.name + ".corrupt").is_file()


# -- 2. task identities ------------------------------------------------------------------


def test_two_csv_files_with_one_name_or_one_task_twice_are_not_merged(tmp_path):
    a = _csv(tmp_path / "a" / "t.csv", ["CCO"])
    b = _csv(tmp_path / "b" / "t.csv", ["CCN"])
    base = {"name": "x", "strong": "s", "weak": ["w1", "w2"]}
    with pytest.raises(ValidationError, match="would both be reported as 't'"):
        ExperimentConfig(**base, tasks=[str(a), str(b)])
    with pytest.raises(ValidationError, match="listed twice"):
        ExperimentConfig(**base, tasks=["ESOL", "esol"])
    with pytest.raises(ValidationError, match="listed twice"):
        ExperimentConfig(**base, tasks=[str(a), str(tmp_path / "a" / ".." / "a" / "t.csv")])
    config = ExperimentConfig(**base, tasks=[str(a), {"name": str(b), "label": "t_b"}])
    assert [t.display_name() for t in config.tasks] == ["t", "t_b"]
    assert TaskSpec(name=str(a)).identity() != TaskSpec(name=str(b)).identity()
    # the same file with other cleaning settings is another task
    ExperimentConfig(**base, tasks=[str(a), {"name": str(a), "label": "t_first", "duplicates": "first"}])


# -- 3. bounded featurisation ------------------------------------------------------------


def test_a_5000_character_smiles_is_excluded_and_reported_before_featurisation(tmp_path):
    huge = "C" * 5000
    task = load_task(str(_csv(tmp_path / "big.csv", ["CCO", huge, "CCN"])))
    assert len(task) == 2 and task.invalid[0].row == 1
    assert "too large: 5000 heavy atoms > max_heavy_atoms=200" in task.report()
    values = parse_encoder_spec("rdkit2d").encode(task.smiles)
    assert values.shape[0] == 2
    assert len(load_task(str(tmp_path / "big.csv"), max_heavy_atoms=None)) == 3  # the cap is a setting


# -- 4. contained paths ------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["..", ".", "../x", "a/b", ".hidden", "x" * 101])
def test_names_that_could_leave_their_folder_are_refused(bad):
    with pytest.raises(ValidationError):
        ExperimentConfig(name=bad, strong="s", weak=["a", "b"], tasks=["ESOL"])
    with pytest.raises(ValidationError):
        FamilyConfig.model_validate({**TINY_FAMILY, "name": bad})
    with pytest.raises(ValidationError):
        FamilyConfig.model_validate(
            {**TINY_FAMILY, "strong": bad, "members": [{**TINY_FAMILY["members"][0], "name": bad}]}
        )
    with pytest.raises(ValidationError):
        TaskSpec(name="ESOL", label=bad)


def test_user_strings_in_file_names_stay_inside_the_cells_folder(tmp_path):
    fam = make_family(300, r=3, tail_dim=40, seed=0)
    weak = ["bert:../../../../tmp/escape", "../up", "a/b"]
    task = "../../task"
    reps = {"strong": fam.strong(), **{w: fam.weak(i) for i, w in enumerate(weak)}}
    config = ExperimentConfig(name="x", strong="strong", weak=weak, tasks=["t"])
    split = CellSplit(0, np.arange(0, 100), np.arange(100, 200), np.arange(200, 300))
    cells = tmp_path / "run" / "cells"
    sweep_task(task, fam.y, reps, [split], config, cells, progress=False)
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(written) == 3 and all(p.parent == cells for p in written)
    names = {safe_filename(s) for s in [*weak, task]}
    assert len(names) == 4 and not any("/" in n or n.startswith(".") for n in names)
    assert safe_filename("ESOL") == "ESOL"


# -- 5. one clean line for every failure -------------------------------------------------


def _molw2s(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "molw2s.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "MOLW2S_DEBUG": ""},
    )


def test_cli_failures_are_one_line_without_markup_or_traceback(tmp_path):
    _csv(tmp_path / "t.csv", ["CCO", "Cc1cc[nH]c1C(", "C[/x]"])
    config = {"name": "x", "strong": "ecfp4-64", "weak": ["maccs", "ecfp2-64"], "tasks": ["t.csv"], "strict": True}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    strict = _molw2s("run", "c.yaml", cwd=tmp_path)
    assert strict.returncode == 2 and "Cc1cc[nH]c1C(" in strict.stderr and "C[/x]" in strict.stderr
    assert "Traceback" not in strict.stderr and "MarkupError" not in strict.stderr
    for override in ("splits.seeds=[0,", "name=.."):
        bad = _molw2s("run", "c.yaml", override, cwd=tmp_path)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert bad.stderr.startswith("error: "), bad.stderr
    (tmp_path / "blocker").write_text("a file where a folder should be")
    unwritable = _molw2s("run", "c.yaml", "strict=false", "--run-dir", "blocker/run", cwd=tmp_path)
    assert unwritable.returncode == 1 and "Traceback" not in unwritable.stderr
    assert "blocker" in unwritable.stderr and len(unwritable.stderr.strip().splitlines()) == 1, unwritable.stderr
    yaml_error = _molw2s("run", "c.yaml", "splits.seeds=[0,", cwd=tmp_path).stderr
    assert yaml_error.count("\n") == 1 and "not valid YAML" in yaml_error  # one line, not wrapped
    assert "plain name" in _molw2s("run", "c.yaml", "name=..", cwd=tmp_path).stderr
    debug = subprocess.run(
        [sys.executable, "-m", "molw2s.cli", "--debug", "run", "c.yaml", "splits.seeds=[0,"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert "Traceback" in debug.stderr


def test_error_lines_for_disk_full_overflow_and_bad_yaml():
    full = describe_error(OSError(errno.ENOSPC, "No space left on device", "/tmp/run/cells/x.json"))
    assert "disk full while writing /tmp/run/cells/x.json" in full and "free" in full
    assert "too large" in describe_error(OverflowError("math range error"))
    assert "--debug" in describe_error(RuntimeError("boom"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        apply_overrides({}, ["splits.seeds=[0,"])


def test_complex_arrays_are_refused_not_truncated():
    with pytest.raises(DataError, match="complex"):
        as_matrix(np.ones((3, 2), dtype=complex), "weak representation")
    with pytest.raises(DataError, match="complex"):
        as_vector(np.ones(3, dtype=complex), "labels")


# -- 6. results that cannot mean anything ------------------------------------------------


def test_tiny_tasks_are_refused_and_few_weak_models_get_no_verdict(tmp_path):
    from molw2s.experiment.cell import task_cell_splits
    from molw2s.experiment.config import CellSettings

    task = load_task(str(_csv(tmp_path / "small.csv", ["C" * (i + 1) + "O" for i in range(8)])))
    with pytest.raises(DataError, match=r"D_w has \d+ molecules \(splits.min_weak = 30\)"):
        task_cell_splits(task, CellSettings())
    import pandas as pd

    def head(n):
        points = pd.DataFrame({"M": range(n), "err_w2s": range(n)})
        (test,) = correlation_tests(points, ["M"], ["err_w2s"], confidence=0.95, min_sources=11)
        return test.verdict

    assert head(2).startswith("no verdict") and head(10).startswith("no verdict (n = 10 < 11")
    assert head(11).startswith("supports")
    assert interval_text(float("nan"), float("nan")) == "no interval"


# -- 7. files follow the umask -----------------------------------------------------------


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
