"""``molw2s pretrain`` and ``molw2s embed`` end to end on tiny models; torchrun DDP smoke test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from molw2s.cli import app
from molw2s.errors import ConfigError
from molw2s.pretraining.config import load_family_config

REPO = Path(__file__).resolve().parents[1]

FAMILY = """\
name: clitest
strong: strong
data: {corpus: {name: nci5k, n: 1000}, val_fraction: 0.2, physchem: false}
train: {batch_size: 32, lr: 0.002, warmup_steps: 20, eval_every: 100, checkpoint_every: 100, num_threads: 1}
members:
  - name: weak
    model: {num_layers: 1, hidden_size: 16, num_heads: 2, intermediate_size: 32}
    steps: 20
  - name: strong
    model: {num_layers: 2, hidden_size: 64, num_heads: 4, intermediate_size: 128}
    steps: 300
    snapshots: [100]
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, str]:
    """A family pretrained through the CLI: (config, run dir, output)."""
    root = tmp_path_factory.mktemp("cli")
    config = root / "family.yaml"
    config.write_text(FAMILY)
    with pytest.MonkeyPatch.context() as patch:  # module scope: its own cache directory
        patch.setenv("MOLW2S_DATA_DIR", str(root / "cache"))
        result = CliRunner().invoke(app, ["pretrain", str(config), "--run-dir", str(root / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    return config, root / "run", result.output


def _accuracies(run: Path) -> dict[str, float]:
    out = {
        m: json.loads((run / m / "COMPLETE.json").read_text())["metrics"]["mlm_accuracy"] for m in ("weak", "strong")
    }
    out["unigram"] = json.loads((run / "family.json").read_text())["unigram_baseline"]["mlm_accuracy"]
    return out


def test_pretrain_prints_the_table_and_the_strong_model_learns(trained) -> None:
    _, run, output = trained
    for name in ("weak", "strong@100", "strong", "unigram baseline", "accuracy", "held-out"):
        assert name in output
    acc = _accuracies(run)
    assert acc["strong"] > acc["unigram"] + 0.05, acc
    assert acc["strong"] > acc["weak"] + 0.05, acc
    assert not (run / "strong" / "checkpoints").exists()  # optimiser state dropped once finished


def test_saved_models_load_with_transformers_alone_and_carry_a_model_card(trained) -> None:
    """A fresh process importing only transformers loads the model and tokenizer (AutoModel,
    AutoTokenizer) and computes the same hidden states as molw2s's loader."""
    import subprocess
    import sys

    import torch

    from molw2s import __version__
    from molw2s.encoders.model_files import load_encoder

    _, run, _ = trained
    final = run / "strong" / "final"
    script = (
        "import sys, json, torch\n"
        "from transformers import AutoModel, AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1]); model = AutoModel.from_pretrained(sys.argv[1]).eval()\n"
        "batch = tok(['CCO', 'c1ccccc1O'], padding=True, return_tensors='pt')\n"
        "with torch.no_grad(): h = model(**batch).last_hidden_state\n"
        "print(json.dumps({'mods': sorted(m for m in sys.modules if m.startswith('molw2s')),"
        " 'ids': batch['input_ids'].tolist(), 'h': h.tolist()}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(final)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    assert fresh["mods"] == []
    model, tokenizer = load_encoder(final)
    batch = tokenizer(["CCO", "c1ccccc1O"], padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == fresh["ids"]
    with torch.no_grad():
        ours = model(**batch).last_hidden_state
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(torch.tensor(fresh["h"])[mask], ours[mask], atol=1e-5, rtol=1e-5)

    card = (final / "README.md").read_text()
    done = json.loads((run / "strong" / "COMPLETE.json").read_text())
    assert "library_name: transformers" in card and f"| molw2s version | {__version__} |" in card
    assert f"| steps | {done['steps']} |" in card and "nci5k" in card
    assert f"| mlm_accuracy | {done['metrics']['mlm_accuracy']:.4g} |" in card
    snapshot_card = (run / "strong" / "snapshots" / "step-00000100" / "README.md").read_text()
    assert "snapshot at step 100" in snapshot_card


def test_second_run_skips_finished_members(trained) -> None:
    config, run, _ = trained
    result = CliRunner().invoke(
        app, ["pretrain", str(config), "--run-dir", str(run), "--no-progress", "--member", "weak"]
    )
    assert result.exit_code == 0, result.output
    assert "finished earlier" in result.output


def test_bad_configs_fail_before_training(tmp_path: Path) -> None:
    config = tmp_path / "family.yaml"
    config.write_text(FAMILY.replace("num_heads: 4", "num_heads: 5"))
    result = CliRunner().invoke(app, ["pretrain", str(config), "--run-dir", str(tmp_path / "run")])
    assert isinstance(result.exception, ConfigError) and "num_heads" in str(result.exception)
    config.write_text(FAMILY)
    result = CliRunner().invoke(app, ["pretrain", str(config), "train.lrate=0.1", "--run-dir", str(tmp_path / "run")])
    assert isinstance(result.exception, ConfigError) and "unknown key 'train.lrate'" in str(result.exception)
    result = CliRunner().invoke(app, ["pretrain", str(config), "--member", "nope", "--run-dir", str(tmp_path / "run")])
    assert isinstance(result.exception, ConfigError) and "no member 'nope'" in str(result.exception)
    assert not (tmp_path / "run").exists()


def test_embed_command_writes_and_caches(trained, moleculenet_dir: Path, tmp_path: Path) -> None:
    _, run, _ = trained
    args = [
        "embed",
        "--encoder",
        f"bert:{run / 'strong' / 'final'}",
        "--task",
        "FreeSolv",
        "--data-dir",
        str(moleculenet_dir.parent),
        "--no-progress",
    ]
    out = tmp_path / "freesolv.npy"
    first = CliRunner().invoke(app, [*args, "--pooling", "mean", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert "642 molecules x 64 features (computed)" in first.output
    assert np.load(out).shape == (642, 64)
    again = CliRunner().invoke(app, [*args, "--pooling", "mean"])
    assert "(from cache)" in again.output
    out_bf16 = tmp_path / "freesolv_bf16.npy"
    bf16 = CliRunner().invoke(app, [*args, "--pooling", "mean", "--precision", "bfloat16", "--out", str(out_bf16)])
    assert "(computed)" in bf16.output  # cached apart from float32
    full, half = np.load(out), np.load(out_bf16)
    assert not np.array_equal(full, half) and np.linalg.norm(half - full) / np.linalg.norm(full) < 0.03
    bad = CliRunner().invoke(app, [*args, "--precision", "half"])
    assert isinstance(bad.exception, ConfigError) and "precision must be one of" in str(bad.exception)


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not installed")
def test_torchrun_two_process_ddp_smoke(tmp_path: Path) -> None:
    config = tmp_path / "family.yaml"
    config.write_text(FAMILY.replace("steps: 300", "steps: 6").replace("snapshots: [100]", "snapshots: [3]"))
    cmd = [
        "torchrun",
        "--nproc_per_node=2",
        "--master_port=29561",
        str(REPO / "pretrain" / "train.py"),
        str(config),
        "--run-dir",
        str(tmp_path / "run"),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "unigram baseline" in proc.stdout
    family = load_family_config(config)
    for member in family.members:
        done = json.loads((tmp_path / "run" / member.name / "COMPLETE.json").read_text())
        assert done["steps"] == member.steps
        assert done["counters"]["tokens"] > 0
    assert (tmp_path / "run" / "strong" / "snapshots" / "step-00000003" / "model.safetensors").is_file()
