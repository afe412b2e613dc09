"""The optimiser, schedule and RNG helpers pretraining and finetuning share (molw2s.training)."""

from __future__ import annotations

import pytest
import torch

from molw2s.training import lr_factor, make_adamw, restore_torch_rng, torch_rng_state, warmup_decay_schedule


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = torch.nn.Linear(4, 4)
        self.LayerNorm = torch.nn.LayerNorm(4)
        self.norm_gate = torch.nn.Parameter(torch.ones(2, 2))
        self.frozen = torch.nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def test_one_weight_decay_rule_for_every_trainer():
    model = _Tiny()
    optimizer = make_adamw(model, lr=1e-3, weight_decay=0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = ([names[id(p)] for p in g["params"]] for g in optimizer.param_groups)
    assert decay == ["dense.weight"]
    assert no_decay == ["norm_gate", "dense.bias", "LayerNorm.weight", "LayerNorm.bias"]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]


def test_the_schedule_warms_up_then_decays_linearly_to_zero():
    optimizer = make_adamw(_Tiny(), lr=1.0, weight_decay=0.0)
    schedule = warmup_decay_schedule(optimizer, total=10, warmup=2)
    seen = []
    for _ in range(10):
        seen.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    assert seen == [lr_factor(s, total=10, warmup=2, decay="linear", min_ratio=0.0) for s in range(10)]
    assert seen[:3] == [0.5, 1.0, 1.0] and seen[-1] == pytest.approx(0.125)


def test_cuda_rng_states_are_captured_and_restored_in_device_order(monkeypatch):
    states = [torch.full((4,), i, dtype=torch.uint8) for i in range(12)]
    restored: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    captured = torch_rng_state()
    assert len(captured) == 13 and torch.equal(captured["torch_cuda11"], states[11])
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    captured["torch_cpu"] = torch.get_rng_state()
    torch.rand(5)
    restore_torch_rng(dict(reversed(captured.items())))
    assert torch.equal(torch.rand(3), expected)
    assert [int(s[0]) for s in restored[0]] == list(range(12))  # torch_cuda10 after torch_cuda9


def test_without_cuda_only_the_cpu_state_is_kept(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert list(torch_rng_state()) == ["torch_cpu"]
