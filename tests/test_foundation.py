"""Package plumbing: config validation, atomic writes, the CLI entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from molw2s.cli import app
from molw2s.config import StrictModel, apply_overrides, build_model, load_config
from molw2s.errors import ConfigError, DataError
from molw2s.io import atomic_path, content_hash, load_npy, save_npy_atomic, write_json_atomic


class Inner(StrictModel):
    beta: float = 0.1
    solver: str = "ridge"


class Outer(StrictModel):
    name: str = "x"
    head: Inner = Inner()


def test_unknown_key_names_key_suggestion_and_valid_keys():
    with pytest.raises(ConfigError) as exc:
        build_model(Outer, {"head": {"betta": 1.0}})
    msg = str(exc.value)
    assert "head.betta" in msg and "did you mean 'beta'" in msg and "solver" in msg


def test_wrong_type_names_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("head:\n  beta: lots\n")
    with pytest.raises(ConfigError, match=r"head\.beta"):
        load_config(Outer, cfg)


def test_overrides_parse_yaml_values():
    data = apply_overrides({"head": {"beta": 1.0}}, ["head.beta=0.5", "name=run1"])
    cfg = build_model(Outer, data)
    assert cfg.head.beta == 0.5 and cfg.name == "run1"
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["nonsense"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "nope.yaml")


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "a.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_npy_roundtrip_and_hash(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_npy_atomic(tmp_path / "x.npy", arr)
    np.testing.assert_array_equal(load_npy(tmp_path / "x.npy"), arr)
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_data_error_names_file_row_column():
    err = DataError("not a number: 'abc'", path="t.csv", row=7, column="y")
    assert "t.csv" in str(err) and "row 7" in str(err) and "'y'" in str(err)


def test_cli_help_and_version():
    runner = CliRunner()
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0 and "data" in res.output
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and "molw2s" in res.output


def test_cached_result_is_keyed_checked_and_complete(tmp_path, caplog):
    from molw2s.io import CachedResult, read_json_checked

    cache = CachedResult(tmp_path / "r.json", "k1", required=frozenset({"value"}))
    assert cache.load() is None
    assert cache.store({"value": 1}) == {"value": 1, "cell": "k1"}
    assert cache.load() == {"value": 1, "cell": "k1"}
    assert CachedResult(tmp_path / "r.json", "k2").load() is None  # another key: recompute
    assert CachedResult(tmp_path / "r.json", "k1", field="key").load() is None
    with caplog.at_level("WARNING"):
        assert CachedResult(tmp_path / "r.json", "k1", required=frozenset({"value", "new"})).load() is None
    assert "is stale (written without new)" in caplog.text
    unkeyed = CachedResult(tmp_path / "u.json")
    unkeyed.store({"value": 2})
    assert unkeyed.load() == read_json_checked(tmp_path / "u.json") == {"value": 2}
