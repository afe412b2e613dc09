"""Members trained side by side in worker processes (``parallel_members``) and bf16 on the
CPU (``train.bf16_cpu``): the same weights as one at a time, errors that reach the caller,
configuration hashes of earlier runs kept."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from molw2s.encoders.model_files import MODEL_FILE
from molw2s.errors import ConfigError
from molw2s.pretraining.config import FamilyConfig, TrainConfig
from molw2s.pretraining.family import family_models, member_config_hash, pretrain_family
from molw2s.pretraining.parallel import longest_first, member_cost
from molw2s.pretraining.trainer import autocast_context


def _member(name: str, layers: int, hidden: int, steps: int, snapshots: list[int] | None = None) -> dict:
    size = {"num_layers": layers, "hidden_size": hidden, "num_heads": 2, "intermediate_size": 2 * hidden}
    return {"name": name, "model": size, "steps": steps, "snapshots": snapshots or []}


def _family(parallel: int, **train) -> FamilyConfig:
    return FamilyConfig.model_validate(
        {
            "name": "tiny",
            "strong": "big",
            "parallel_members": parallel,
            "data": {"corpus": {"name": "nci5k", "n": 120}, "val_fraction": 0.2, "descriptor_jobs": 1},
            "train": {"batch_size": 8, "warmup_steps": 2, "eval_every": 5, "num_threads": 1, "seed": 3, **train},
            "members": [
                _member("small", 1, 8, 6),
                _member("big", 2, 16, 10, [4]),
                _member("mid", 1, 16, 8),
            ],
        }
    )


def _weights(run_dir: Path, family: FamilyConfig) -> dict[str, dict[str, torch.Tensor]]:
    return {name: load_file(str(path / MODEL_FILE)) for name, path in family_models(family, run_dir).items()}


def test_members_in_parallel_get_the_weights_they_get_one_at_a_time(tmp_path: Path) -> None:
    one, two = _family(1), _family(2)
    pretrain_family(one, tmp_path / "one", progress=False)
    result = pretrain_family(two, tmp_path / "two", progress=False)
    assert {row.status for row in result.rows if row.role != "baseline"} == {"trained", "snapshot"}
    serial, parallel = _weights(tmp_path / "one", one), _weights(tmp_path / "two", two)
    assert serial.keys() == parallel.keys() == {"small", "big@4", "big", "mid"}
    for name, tensors in serial.items():
        assert all(torch.equal(tensors[k], parallel[name][k]) for k in tensors), name
    again = pretrain_family(two, tmp_path / "two", progress=False)  # finished: nothing to do
    assert {row.status for row in again.rows if row.role == "strong"} == {"finished earlier"}


def test_a_member_failing_in_a_worker_fails_the_family(tmp_path: Path) -> None:
    """The worker's error (here: a checkpoint of another configuration) reaches the caller
    with its type and message; the other member still finishes."""

    class Stop(RuntimeError):
        pass

    def stop_big(member: str, step: int) -> None:
        if member == "big" and step == 5:
            raise Stop

    with contextlib.suppress(Stop):
        pretrain_family(_family(1, checkpoint_every=5), tmp_path, members=["big"], progress=False, on_step=stop_big)
    changed = _family(2, checkpoint_every=5, lr=1e-3)
    with pytest.raises(ConfigError, match="written by a different configuration"):
        pretrain_family(changed, tmp_path, members=["big", "mid"], progress=False)
    assert (tmp_path / "mid" / "COMPLETE.json").is_file()


def test_members_are_handed_out_longest_first() -> None:
    family = _family(2)
    order = [m.name for m in longest_first(family, family.members)]
    assert order == ["big", "mid", "small"]
    costs = [member_cost(family, family.member(name)) for name in order]
    assert costs == sorted(costs, reverse=True) and costs[0] == 10 * 8 * 2 * (4 * 16**2 + 2 * 16 * 32)


def test_bf16_on_the_cpu_is_opt_in_and_keeps_earlier_hashes() -> None:
    family = FamilyConfig.model_validate({"name": "tiny", "strong": "m", "members": [_member("m", 1, 16, 12)]})
    # the hash this member had before bf16_cpu existed: its finished runs stay valid
    assert member_config_hash(family, family.members[0], "fingerprint") == "9f8fb8176fb21a3a"
    on = family.model_copy(update={"train": family.train.model_copy(update={"bf16_cpu": True})})
    assert member_config_hash(on, on.members[0], "fingerprint") != "9f8fb8176fb21a3a"

    cpu = torch.device("cpu")
    assert isinstance(autocast_context(cpu, TrainConfig()), contextlib.nullcontext)
    with autocast_context(cpu, TrainConfig(bf16_cpu=True)):
        out = torch.nn.Linear(4, 4)(torch.ones(2, 4))
    assert out.dtype == torch.bfloat16


@pytest.mark.parametrize("native", [False, True])
def test_bf16_auto_uses_bf16_only_where_the_cpu_has_it(monkeypatch, caplog, native: bool) -> None:
    from molw2s.pretraining import trainer

    monkeypatch.setattr(trainer, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    with autocast_context(cpu, TrainConfig(bf16_cpu="auto")):
        auto = torch.nn.Linear(4, 4)(torch.ones(2, 4)).dtype
    assert auto == (torch.bfloat16 if native else torch.float32)
    with caplog.at_level("WARNING"), autocast_context(cpu, TrainConfig(bf16_cpu=True)):
        forced = torch.nn.Linear(4, 4)(torch.ones(2, 4)).dtype
    assert forced == torch.bfloat16 and ("no native bfloat16" in caplog.text) == (not native)


def test_a_bf16_member_trains_and_differs_from_float32(tmp_path: Path) -> None:
    fp32, bf16 = _family(1), _family(1, bf16_cpu=True)
    pretrain_family(fp32, tmp_path / "fp32", members=["small"], progress=False)
    result = pretrain_family(bf16, tmp_path / "bf16", members=["small"], progress=False)
    small = next(row for row in result.rows if row.name == "small")
    assert small.status == "trained" and 0.0 < small.metrics["mlm_accuracy"] <= 1.0
    a, b = (load_file(str(run / "small" / "final" / MODEL_FILE)) for run in (tmp_path / "fp32", tmp_path / "bf16"))
    assert all(t.dtype == torch.float32 for t in b.values())  # master weights stay float32
    assert not all(torch.equal(a[k], b[k]) for k in a)
