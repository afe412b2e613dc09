"""Kill-and-resume: a run killed at any step (even by SIGKILL) and resumed ends bitwise
identical to an uninterrupted run; corrupt or partial checkpoints are skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from molw2s.encoders.model_files import MODEL_FILE
from molw2s.errors import ConfigError
from molw2s.io import verify_dir
from molw2s.pretraining import checkpoint as ckpt
from molw2s.pretraining.config import FamilyConfig
from molw2s.pretraining.family import collect_results, family_models, pretrain_family

STEPS = 12


def _family(**train_overrides) -> FamilyConfig:
    return FamilyConfig.model_validate(
        {
            "name": "tiny",
            "strong": "m",
            "data": {"corpus": {"name": "nci5k", "n": 120}, "val_fraction": 0.2, "descriptor_jobs": 1},
            "train": {
                "batch_size": 8,
                "warmup_steps": 3,
                "checkpoint_every": 4,
                "eval_every": 6,
                "keep_checkpoints": 3,
                "num_threads": 1,
                "seed": 5,
                **train_overrides,
            },
            "members": [
                {
                    "name": "m",
                    "model": {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32},
                    "steps": STEPS,
                    "snapshots": [6],
                }
            ],
        }
    )


class Killed(RuntimeError):
    """Stands in for a crash in the middle of training."""


def _kill_at(step: int):
    def on_step(member: str, current: int) -> None:
        if current == step:
            raise Killed(f"{member} killed at step {current}")

    return on_step


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run (module scope: it gets its own cache directory)."""
    run = tmp_path_factory.mktemp("uninterrupted")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOLW2S_DATA_DIR", str(tmp_path_factory.mktemp("cache")))
        pretrain_family(_family(), run, progress=False)
    return run


def test_uninterrupted_run_exports_final_snapshot_and_marker(reference: Path) -> None:
    models = family_models(_family(), reference)
    assert set(models) == {"m", "m@6"}
    for path in models.values():
        assert verify_dir(path) is None
    done = json.loads((reference / "m" / "COMPLETE.json").read_text())
    assert done["steps"] == STEPS and 0.0 <= done["metrics"]["mlm_accuracy"] <= 1.0
    rows = {r.name: r for r in collect_results(_family(), reference).rows}
    assert rows["m@6"].steps == 6 and rows["m"].steps == STEPS
    assert rows["unigram baseline"].metrics["mlm_accuracy"] > 0


def test_exception_mid_run_then_resume_is_bitwise_identical(reference: Path, tmp_path: Path) -> None:
    family = _family()
    with pytest.raises(Killed):
        pretrain_family(family, tmp_path, progress=False, on_step=_kill_at(7))
    latest, _ = ckpt.latest_valid_checkpoint(tmp_path / "m" / "checkpoints")
    assert latest is not None and latest.name == ckpt.step_dir_name(4)  # steps 5..7 are redone
    assert not (tmp_path / "m" / "COMPLETE.json").exists()

    steps_seen: list[int] = []
    pretrain_family(family, tmp_path, progress=False, on_step=lambda m, s: steps_seen.append(s))
    assert steps_seen == list(range(5, STEPS + 1))
    _assert_same_weights(reference / "m" / "final", tmp_path / "m" / "final")
    _assert_same_weights(
        reference / "m" / "snapshots" / ckpt.step_dir_name(6), tmp_path / "m" / "snapshots" / ckpt.step_dir_name(6)
    )


def test_sigkill_then_resume_is_bitwise_identical(reference: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, os, signal, sys
        from molw2s.pretraining.config import FamilyConfig
        from molw2s.pretraining.family import pretrain_family

        family = FamilyConfig.model_validate(json.loads(sys.argv[1]))
        def die(member, step):
            if step == 9:
                os.kill(os.getpid(), signal.SIGKILL)
        pretrain_family(family, sys.argv[2], progress=False, on_step=die)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, _family().model_dump_json(), str(tmp_path)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    latest, _ = ckpt.latest_valid_checkpoint(tmp_path / "m" / "checkpoints")
    assert latest is not None and latest.name == ckpt.step_dir_name(8)
    pretrain_family(_family(), tmp_path, progress=False)
    _assert_same_weights(reference / "m" / "final", tmp_path / "m" / "final")


def test_worker_processes_build_the_same_batches_and_resume_bitwise(reference: Path, tmp_path: Path) -> None:
    """Batches built by two DataLoader workers (killed mid-run, resumed with workers again)
    give the weights of the single-process reference run, bit for bit."""
    family = _family(data_workers=2)
    with pytest.raises(Killed):
        pretrain_family(family, tmp_path, progress=False, on_step=_kill_at(7))
    steps_seen: list[int] = []
    pretrain_family(family, tmp_path, progress=False, on_step=lambda m, s: steps_seen.append(s))
    assert steps_seen == list(range(5, STEPS + 1))
    _assert_same_weights(reference / "m" / "final", tmp_path / "m" / "final")
    done = json.loads((tmp_path / "m" / "COMPLETE.json").read_text())
    assert done["counters"] == json.loads((reference / "m" / "COMPLETE.json").read_text())["counters"]


def test_corrupt_and_partial_checkpoints_are_skipped(reference: Path, tmp_path: Path, caplog) -> None:
    family = _family()
    with pytest.raises(Killed):
        pretrain_family(family, tmp_path, progress=False, on_step=_kill_at(11))
    root = tmp_path / "m" / "checkpoints"
    newest = root / ckpt.step_dir_name(8)
    assert verify_dir(newest) is None
    weights = newest / MODEL_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # a flipped bit in the weights
    weights.write_bytes(bytes(data))
    assert "checksum" in verify_dir(newest)
    partial = root / ckpt.step_dir_name(10)  # a directory whose manifest never got written
    partial.mkdir()
    (partial / MODEL_FILE).write_bytes(b"\0" * 10)
    assert "MANIFEST" in verify_dir(partial)

    latest, skipped = ckpt.latest_valid_checkpoint(root)
    assert latest.name == ckpt.step_dir_name(4)
    assert [p.name for p, _ in skipped] == [partial.name, newest.name]
    pretrain_family(family, tmp_path, progress=False)
    _assert_same_weights(reference / "m" / "final", tmp_path / "m" / "final")


def test_finished_members_are_skipped_and_other_configs_refused(reference: Path) -> None:
    calls: list[int] = []
    result = pretrain_family(_family(), reference, progress=False, on_step=lambda m, s: calls.append(s))
    assert calls == []
    assert {r.name: r.status for r in result.rows}["m"] == "finished earlier"
    with pytest.raises(ConfigError, match="different configuration"):
        pretrain_family(_family(lr=1e-3), reference, progress=False)


def test_resuming_with_another_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Killed):
        pretrain_family(_family(), tmp_path, progress=False, on_step=_kill_at(5))
    with pytest.raises(ConfigError, match="different configuration"):
        pretrain_family(_family(weight_decay=0.5), tmp_path, progress=False)
    # bookkeeping settings do not change the weights, so they may change on resume
    pretrain_family(_family(eval_every=4, checkpoint_every=3), tmp_path, progress=False)


def test_optimizer_state_survives_flattening() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(net.parameters(), lr=0.1, betas=(0.8, 0.9))
    for _ in range(3):
        net(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
        opt.zero_grad()
    tensors, meta = ckpt.flatten_optimizer_state(opt.state_dict())
    meta = json.loads(json.dumps(meta))  # it must survive JSON
    clone = torch.optim.AdamW(net.parameters(), lr=1.0)
    clone.load_state_dict(ckpt.unflatten_optimizer_state(tensors, meta))
    original, restored = opt.state_dict(), clone.state_dict()
    assert original["param_groups"] == restored["param_groups"]
    for pid, entry in original["state"].items():
        for key, value in entry.items():
            assert torch.equal(value, restored["state"][pid][key])
