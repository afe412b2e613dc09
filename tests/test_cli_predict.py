"""``molw2s predict`` and ``molw2s w2s``: text and JSON output, array files, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from molw2s.cli import app
from molw2s.data.tasks import load_task
from molw2s.encoders.embed import embed_task
from molw2s.errors import ConfigError, DataError, DataNotFoundError
from molw2s.experiment.cell import run_cell, task_cell_splits
from molw2s.experiment.config import CellSettings
from molw2s.theory.predictor import predict_w2s
from molw2s.theory.synthetic import make_family
from molw2s.w2s.arrays import load_array

runner = CliRunner()


@pytest.fixture(scope="module")
def arrays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("arrays")
    fam = make_family(400, r=4, tail_dim=300, seed=0)
    H_w, H_s = fam.weak(3), fam.strong()
    files = {"weak": root / "W.npy", "strong": root / "S.npy", "labels": root / "y.npy", "npz": root / "both.npz"}
    np.save(files["weak"], H_w)
    np.save(files["strong"], H_s)
    np.save(files["labels"], fam.y)
    np.savez(files["npz"], weak=H_w[:150], strong=H_s[:150])
    bad = H_w.copy()
    bad[12, 3] = np.nan
    np.save(root / "bad.npy", bad)
    np.save(root / "short.npy", fam.y[:-1])
    (root / "split.json").write_text(
        json.dumps({"train": list(range(300)), "valid": list(range(300, 350)), "test": list(range(350, 400))})
    )
    return {
        k: str(v)
        for k, v in {
            **files,
            "bad": root / "bad.npy",
            "short": root / "short.npy",
            "split": root / "split.json",
        }.items()
    }


def test_predict_text_and_json_match_the_library(arrays):
    args = [
        "predict",
        "--weak",
        arrays["weak"],
        "--strong",
        arrays["strong"],
        "w2s.weak_head.beta=0.1",
        "w2s.head.beta=0.2",
    ]
    text = runner.invoke(app, args)
    assert text.exit_code == 0, text.output
    assert text.output.splitlines()[0].startswith("M ")
    assert "predgap_hat  n/a" in text.output
    out = runner.invoke(app, [*args, "--labels", arrays["labels"], "--json"])
    row = json.loads(out.output)
    ref = predict_w2s(
        np.load(arrays["weak"]),
        np.load(arrays["strong"]),
        beta_w=0.1,
        beta_s=0.2,
        y=np.load(arrays["labels"]),
        scale="trace",
    )
    assert row["M"] == pytest.approx(ref.M) and row["predgap_hat"] == pytest.approx(ref.predgap_hat)
    assert row["rule"] == "auto" and row["beta_s"] == 0.2
    assert (row["rule_w"], row["rule_s"]) == (ref.rule_w, ref.rule_s)


def test_predict_options_and_npz(arrays):
    out = runner.invoke(
        app,
        [
            "predict",
            "--weak",
            arrays["npz"] + ":weak",
            "--strong",
            arrays["npz"] + ":strong",
            "predictor.primary.rule=tau",
            "predictor.primary.tau=0.5",
            "--json",
        ],
    )
    row = json.loads(out.output)
    assert row["rule"] == "tau" and row["tau"] == 0.5 and row["n_hat"] == 150
    out = runner.invoke(
        app,
        [
            "predict",
            "--weak",
            arrays["weak"],
            "--strong",
            arrays["strong"],
            "--json",
            "predictor.primary.rule=fixed",
            "predictor.primary.k_w=3",
            "predictor.primary.k_s=4",
        ],
    )
    row = json.loads(out.output)
    assert (row["rule"], row["k_w"], row["k_s"]) == ("fixed", 3, 4)


def test_predict_reads_an_experiment_config(arrays, tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("name: x\nstrong: s\nweak: [a, b]\ntasks: [ESOL]\nw2s: {head: {beta: 0.3, scale: none}}\n")
    out = runner.invoke(
        app, ["predict", "--weak", arrays["weak"], "--strong", arrays["strong"], "--config", str(cfg), "--json"]
    )
    row = json.loads(out.output)
    assert (row["beta_w"], row["beta_s"], row["scale"]) == (0.3, 0.3, "none")


@pytest.mark.parametrize(
    ("weak", "extra", "error", "message"),
    [
        ("bad", [], DataError, r"bad\.npy, row 12, column '3': weak representation contains nan"),
        ("missing", [], DataNotFoundError, "weak representation file not found"),
        ("npz", [], DataError, r"holds 2 arrays \['weak', 'strong'\]"),
        ("weak", ["--labels", "short"], DataError, r"short\.npy: labels has 399 rows but the representation has 400"),
        ("weak", ["predictor.primary.tau=1.5"], ConfigError, r"predictor\.primary\.tau"),
        ("weak", ["w2s.head.scale=zscore"], ConfigError, r"w2s\.head\.scale"),
    ],
)
def test_predict_bad_input(arrays, weak, extra, error, message):
    extra = [arrays.get(x, x) for x in extra]
    result = runner.invoke(
        app, ["predict", "--weak", arrays.get(weak, "nope.npy"), "--strong", arrays["strong"], *extra]
    )
    assert isinstance(result.exception, error), result.output
    assert re.search(message, str(result.exception))


def test_load_array_refuses_what_it_cannot_read_safely(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="unpickling"):
        load_array(tmp_path / "obj.npy")
    np.save(tmp_path / "x.npy", np.arange(3))
    with pytest.raises(DataError, match="single .npy array"):
        load_array(f"{tmp_path / 'x.npy'}:k")
    np.savez(tmp_path / "z.npz", a=np.arange(2))
    np.testing.assert_array_equal(load_array(tmp_path / "z.npz"), np.arange(2))
    with pytest.raises(DataError, match=r"has no array 'b'; it holds \['a'\]"):
        load_array(f"{tmp_path / 'z.npz'}:b")
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(DataError, match=".npy or .npz"):
        load_array(tmp_path / "x.csv")


def test_w2s_on_arrays(arrays, tmp_path):
    out_file = tmp_path / "result.json"
    args = ["w2s", "--weak", arrays["weak"], "--strong", arrays["strong"], "--labels", arrays["labels"]]
    result = runner.invoke(
        app,
        [
            *args,
            "--split",
            arrays["split"],
            "splits.n_weak=100",
            "splits.n_strong=0.5",
            "--json",
            "--out",
            str(out_file),
        ],
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row == json.loads(out_file.read_text())
    assert (row["n_weak"], row["n_strong"], row["n_test"]) == (100, 150, 50)
    assert {"err_w", "err_w2s", "err_sc", "pgr", "predgap", "gain", "misfit", "M", "predgap_hat", "cka"} <= set(row)
    again = runner.invoke(
        app, [*args, "--split", arrays["split"], "splits.n_weak=100", "splits.n_strong=0.5", "--json"]
    )
    assert json.loads(again.output) == row  # deterministic under the seed
    text = runner.invoke(app, [*args, "--no-predictor", "--seed", "3"])
    assert text.exit_code == 0 and text.output.startswith("err_w ") and "predgap_hat" not in text.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weak", "weak", "--strong", "strong"], "--labels"),
        (["--weak", "weak", "--strong", "strong", "--labels", "labels", "splits.n_weak=lots"], "splits.n_weak"),
        (["--task", "ESOL", "--weak", "weak"], "drop --weak"),
        (["--weak", "weak", "--strong", "strong", "--labels", "labels", "splits.method=paper"], "needs a task"),
    ],
)
def test_w2s_bad_options(arrays, extra, message):
    result = runner.invoke(app, ["w2s", *[arrays.get(x, x) for x in extra]])
    assert isinstance(result.exception, ConfigError) and message in str(result.exception)


def test_w2s_on_a_task_with_fingerprint_encoders(moleculenet_dir):
    options = ["--weak-encoder", "maccs", "--strong-encoder", "ecfp4-1024", "--seed", "122", "--json"]
    options.append("splits.method=paper")
    result = runner.invoke(app, ["w2s", "--task", "FreeSolv", "--data-dir", str(moleculenet_dir), *options])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["n_test"] == 65 and row["n_weak"] + row["n_strong"] == 512  # the paper's 80/10/10 of 642
    assert row["err_sc"] > 0 and 0 <= row["M"] <= 1
    # the same cell as `molw2s run` computes: D_w / D_s drawn with the split seed (122), not 0
    settings = CellSettings(splits={"method": "paper", "seeds": [122]})
    task = load_task("FreeSolv", data_dir=moleculenet_dir)
    (split,) = task_cell_splits(task, settings, moleculenet_dir)
    reps = [embed_task(spec, task, pooling="mean") for spec in ("maccs", "ecfp4-1024")]
    expected = run_cell(*reps, task.y, split, settings)
    assert {k: row[k] for k in expected} == json.loads(json.dumps(expected))


def test_console_script_prints_a_clean_error(arrays):
    proc = subprocess.run(
        [sys.executable, "-m", "molw2s.cli", "predict", "--weak", arrays["bad"], "--strong", arrays["strong"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "contains nan" in proc.stderr and "Traceback" not in proc.stderr
