"""Bad settings and inputs of the hostile-user audit (issue 28): each is refused when the
config or file is read, with an error naming the key, spec, task or file; each test fails
if its case returns."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from molw2s.cli import app, describe_error
from molw2s.config import apply_overrides
from molw2s.data.tasks import load_task
from molw2s.encoders.embed import parse_encoder_spec
from molw2s.errors import ConfigError, DataError
from molw2s.experiment.cell import CellSplit, run_cell
from molw2s.experiment.config import ExperimentConfig, load_experiment_config
from molw2s.experiment.summary import load_results
from molw2s.io import write_text_atomic
from molw2s.pretraining.config import load_family_config
from molw2s.theory.synthetic import make_family
from molw2s.w2s.arrays import load_array

REPO_ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = REPO_ROOT / "configs" / "quickstart.yaml"
runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


# -- 4. every setting that can fail later is refused when the config is read -------------


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("w2s.head.beta=.inf", "w2s.head.beta"),
        ("w2s.head.beta=1e308", "w2s.head.beta"),
        ("w2s.head.beta=.nan", "w2s.head.beta"),
        ("w2s.weak_head={beta: 1.0e+13}", "w2s.weak_head.beta"),
        ("w2s.head.lr=.inf", "w2s.head.lr"),
        ("splits.seeds=[-1]", "splits.seeds.0"),
        ("splits.seeds=[4294967296]", "splits.seeds.0"),
        ("splits.n_weak=0", "splits.n_weak"),
        ("splits.n_strong=1.5", "splits.n_strong"),
        ("evaluation.seed=-2", "evaluation.seed"),
        ("w2s.finetune.lr=.inf", "w2s.finetune.lr"),
    ],
)
def test_settings_that_would_fail_inside_a_cell_are_refused_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"\n  {key}: "):
        load_experiment_config(QUICKSTART, [override])


def test_an_sgd_head_that_cannot_converge_is_refused_naming_lr_and_beta():
    with pytest.raises(ConfigError, match=r"w2s\.head: .*lr=10 with beta=0\.5.*cannot converge"):
        load_experiment_config(QUICKSTART, ["w2s.head.solver=sgd", "w2s.head.lr=10", "w2s.head.beta=0.5"])


def test_family_settings_are_refused_naming_the_key():
    family = REPO_ROOT / "configs" / "family_quickstart.yaml"
    with pytest.raises(ConfigError, match=r"\n  train\.lr: Input should be a finite number"):
        load_family_config(family, ["train.lr=.nan"])
    with pytest.raises(ConfigError, match=r"\n  train\.seed: "):
        load_family_config(family, ["train.seed=-1"])


def test_the_largest_accepted_beta_keeps_a_cell_finite():
    fam = make_family(200, r=3, tail_dim=20, angles=np.array([0.3]), tail_var=1.0, seed=0)
    config = ExperimentConfig(
        name="big_beta", strong="s", weak=["w", "v"], tasks=["synth"], w2s={"head": {"beta": 1e12}}
    )
    split = CellSplit(0, np.arange(0, 60), np.arange(60, 140), np.arange(140, 200))
    row = run_cell(fam.weak(0), fam.strong(), fam.y, split, config, names=("w", "s"))
    assert all(np.isfinite(row[k]) for k in ("err_w", "err_w2s", "err_sc", "M", "predgap_hat"))


# -- 6. featuriser specs, seeds and results files: clear errors ---------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ecfp:radius=2,nbits=0", "nbits >= 1"),
        ("ecfp:nbits=../../x", "nbits must be a whole number, got '../../x'"),
        ("ecfp:radius=-1", "even diameter >= 0"),
        ("ecfp:counts=maybe", "counts must be true or false"),
    ],
)
def test_bad_ecfp_specs_name_the_spec(spec, message):
    with pytest.raises(ConfigError, match=f"encoder {spec!r}: .*{message}".replace("(", r"\(")):
        parse_encoder_spec(spec)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"name": "x", "tasks": {"t": {"correl', "not valid JSON"),
        ('{"rows": [1, 2]}', "not the results.json of `molw2s run`"),
        ('{"name": "x", "tasks": {"t": {"correlations": []}}}', "task 't' lacks"),
    ],
)
def test_a_truncated_or_foreign_results_json_names_the_file(tmp_path, content, message):
    path = tmp_path / "report" / "results.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(DataError, match=f"file {path}: .*{message}"):
        load_results(tmp_path)
    result = _invoke("report", str(tmp_path))
    assert isinstance(result.exception, DataError) and str(path) in str(result.exception)


# -- 7. zero usable molecules, mismatched rows ---------------------------------------------


@pytest.mark.parametrize("body", ["", "C1CC,1\nxx,2\n"], ids=["no rows", "no valid SMILES"])
def test_a_task_without_usable_molecules_is_an_error_naming_task_and_file(tmp_path, body):
    path = tmp_path / "hollow.csv"
    path.write_text("smiles,y\n" + body)
    with pytest.raises(DataError, match=f"file {path}: task hollow: no usable molecule"):
        load_task(str(path))
    validate = _invoke("data", "validate", "--task", str(path))
    assert validate.exit_code == 1 and "no usable molecule" in validate.output
    embed = _invoke("embed", "--task", str(path), "--encoder", "maccs", "--out", str(tmp_path / "x.npy"))
    assert isinstance(embed.exception, DataError) and not (tmp_path / "x.npy").exists()


def test_a_corpus_without_valid_molecules_is_an_error_naming_it(tmp_path):
    from molw2s.data.corpora import load_corpus

    path = tmp_path / "hollow.smi"
    path.write_text("C1CC\nxx\n")
    with pytest.raises(DataError, match=f"file {path}: corpus .*no valid molecule in 2 row"):
        load_corpus(str(path))


def test_w2s_names_the_files_whose_rows_differ(tmp_path):
    rng = np.random.default_rng(0)
    files = {"weak": rng.normal(size=(120, 4)), "strong": rng.normal(size=(120, 6)), "labels": rng.normal(size=119)}
    for name, array in files.items():
        np.save(tmp_path / f"{name}.npy", array)
    split = {"train": list(range(80)), "valid": list(range(80, 100)), "test": list(range(100, 120))}
    (tmp_path / "split.json").write_text(json.dumps(split))  # a split of the 120 molecules
    args = [f"--{name}={tmp_path / name}.npy" for name in files]
    result = _invoke("w2s", *args, f"--split={tmp_path / 'split.json'}")
    message = str(result.exception)
    assert isinstance(result.exception, DataError) and "row counts differ" in message, message
    assert f"--labels {tmp_path / 'labels.npy'}: 119" in message and "split" not in message


# -- 8. freeze beyond the layer count --------------------------------------------------------


def test_freeze_beyond_the_layer_count_is_an_error_naming_key_and_layers():
    from transformers import BertConfig, BertModel

    from molw2s.finetuning.model import RegressionModel

    encoder = BertModel(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2))
    model = RegressionModel(encoder)
    with pytest.raises(ConfigError, match=r"freeze=99 \(training\.freeze.*has 1 transformer layer"):
        model.freeze(99)
    with pytest.raises(ConfigError, match="at most 1"):
        model.freeze(2)  # embeddings + the only layer: nothing of the encoder would train
    assert model.freeze(1) == 1 and any(p.requires_grad for p in model.encoder.encoder.layer[0].parameters())


def test_molw2s_finetune_refuses_freeze_beyond_the_layers_before_any_work(tmp_path, make_tiny_checkpoint):
    from molw2s.experiment.config import FinetuneConfig
    from molw2s.experiment.finetune import run_finetune

    model = make_tiny_checkpoint(tmp_path / "model", ["CCO", "c1ccccc1"], layers=1)
    config = FinetuneConfig(
        name="ft", model=str(model), tasks=["nci_logp"], run_dir=tmp_path / "run", training={"freeze": 99}
    )
    with pytest.raises(ConfigError, match=r"freeze=99 \(training\.freeze\) .* 1 transformer layer"):
        run_finetune(config, progress=False)
    assert not (tmp_path / "run" / "cells").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["embedding.layer=3"], r"embedding\.layer: layer 3 is out of range for model 'weak_xs@100', which has 1"),
        (["embedding.layer=-3"], r"embedding\.layer: layer -3 is out of range for model 'weak_xs@100'"),
        (["expand.layers=[4]"], r"expand\.layers: layer 4 is out of range for model 'weak_xs@100'"),
        (
            ["strong=strong", "w2s.student=finetune", "w2s.finetune.freeze=5"],  # a transformer strong model
            r"freeze=5 \(w2s\.finetune\.freeze\) would freeze the whole encoder, which has 4",
        ),
    ],
)
def test_layers_and_freeze_beyond_a_family_members_size_are_refused_before_pretraining(tmp_path, overrides, message):
    from molw2s.experiment.config import load_experiment_config
    from molw2s.experiment.runner import run_experiment

    config = load_experiment_config(QUICKSTART, [f"run_dir={tmp_path / 'run'}", *overrides])
    with pytest.raises(ConfigError, match=message):
        run_experiment(config, progress=False)
    assert not (tmp_path / "run" / "models").exists()  # nothing was pretrained


def test_multicap_refuses_a_layer_or_freeze_beyond_its_transformers_size(tmp_path, make_tiny_checkpoint):
    from molw2s.experiment.config import load_multicap_config
    from molw2s.experiment.multicap import run_multicap

    model = make_tiny_checkpoint(tmp_path / "model", ["CCO", "c1ccccc1"], layers=1)
    demo = REPO_ROOT / "configs" / "multicap_demo.yaml"
    base = [f"run_dir={tmp_path / 'run'}", f"strong=bert:{model}"]
    with pytest.raises(ConfigError, match=r"embedding\.layer: layer 2 is out of range for model 'bert:"):
        run_multicap(load_multicap_config(demo, [*base, "embedding.layer=2"]))
    with pytest.raises(ConfigError, match=r"freeze=3 \(student\.finetune\.freeze\)"):
        run_multicap(load_multicap_config(demo, [*base, "student.kind=finetune", "student.finetune.freeze=3"]))
    assert not (tmp_path / "run" / "cells").exists()


# -- 9. duplicates with conflicting labels ----------------------------------------------------


def test_duplicates_with_conflicting_labels_are_reported_with_their_spread(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("smiles,y\nCCO,-0.77\nCCN,1\nOCC,4.23\nNCC,1\nCCC,2\n")
    result = _invoke("data", "validate", "--task", str(path))
    assert result.exit_code == 0, result.output
    assert "duplicate rows: [0, 2]: conflicting labels -0.77, 4.23 (spread 5)" in result.output
    assert "duplicate rows: [1, 3]: same label 1" in result.output
    assert "2 (1 conflicting)" in result.output


# -- also: list items in overrides, the family file, text saved as .npy, disk full -----------


def test_overrides_address_list_items_by_index_or_member_name():
    family = REPO_ROOT / "configs" / "family_quickstart.yaml"
    members = yaml.safe_load(family.read_text())["members"]
    last, strong = len(members) - 1, yaml.safe_load(family.read_text())["strong"]
    config = load_family_config(family, [f"members.{last}.steps=300", f"members.{strong}.snapshots=[7]"])
    assert config.members[last].steps == 300 and config.member(strong).snapshots == [7]
    data = {"members": [{"name": "a", "steps": 1}]}
    assert apply_overrides(data, ["members.a.steps=2"]) == {"members": [{"name": "a", "steps": 2}]}
    assert data == {"members": [{"name": "a", "steps": 1}]}  # the input is not changed
    with pytest.raises(ConfigError, match="members has 1 item"):
        apply_overrides(data, ["members.3.steps=300"])
    with pytest.raises(ConfigError, match=r"by its index \(0 to 0\) or its name \(a\)"):
        apply_overrides(data, ["members.b.steps=300"])


def test_a_missing_family_file_is_named_with_the_paths_tried(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump({"name": "x", "family": "nope.yaml", "strong": "s", "weak": ["a", "b"]}))
    with pytest.raises(ConfigError, match=f"family: no file nope.yaml in the config's folder \\({tmp_path}/nope.yaml"):
        load_experiment_config(config, ["tasks=[nci_logp]"])


def test_a_text_file_saved_as_npy_is_called_text_not_pickled(tmp_path):
    path = tmp_path / "labels.npy"
    path.write_text("y\n1.0\n2.0\n")
    with pytest.raises(DataError, match=r"labels is a text file \(starting 'y'\), not a \.npy file") as info:
        load_array(path, "labels")
    assert "pickle" not in str(info.value)


def test_disk_full_names_the_file_and_the_free_space_of_its_file_system(tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write to an open file: no name

    monkeypatch.setattr(Path, "write_text", full)
    target = tmp_path / "cells" / "x.json"
    with pytest.raises(OSError) as info:
        write_text_atomic(target, "{}")
    assert info.value.filename == str(target)
    line = describe_error(info.value)
    said = re.match(
        rf"disk full while writing {re.escape(str(target))} \(([\d,]+) MiB free on the file system holding it\)", line
    )
    assert said, line
    free = shutil.disk_usage(tmp_path).free / 2**20  # others may write meanwhile: 1 GiB of slack
    assert abs(int(said.group(1).replace(",", "")) - free) < 1024, line
    assert "not known" in describe_error(OSError(errno.ENOSPC, "No space left on device"))
    assert not [p for p in os.listdir(target.parent) if p.endswith(".tmp")]
