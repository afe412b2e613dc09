"""What pretraining and finetuning share about optimisation: AdamW with one rule for the
parameters that skip weight decay, the warmup-then-decay learning-rate schedule, and
torch's RNG states (CPU and every CUDA device) for resumable training.

The weight-decay rule (BERT's convention, written once): a trainable parameter with fewer
than two dimensions (biases, LayerNorm scales) or with ``norm`` in its name (any case)
gets no weight decay; every other trainable parameter gets ``weight_decay``; frozen
parameters (``requires_grad`` false) are left out of the optimiser.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Decay = Literal["linear", "cosine", "constant"]


def skips_weight_decay(name: str, param: torch.nn.Parameter) -> bool:
    """True for the parameters AdamW does not decay (see the module doc)."""
    return param.ndim < 2 or "norm" in name.lower()


def make_adamw(
    model: torch.nn.Module,
    *,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    fused: bool = False,
) -> torch.optim.AdamW:
    """AdamW over ``model``'s trainable parameters in two groups, decayed and not (the
    module doc's rule), each in ``named_parameters`` order; ``fused``: one kernel for the
    whole update (CUDA)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if skips_weight_decay(name, param) else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused)


def lr_factor(step: int, *, total: int, warmup: int, decay: Decay, min_ratio: float) -> float:
    """Multiplier of the peak learning rate for update ``step`` (0-based): linear warmup over
    ``warmup`` updates, then ``decay`` (linear, cosine or constant) to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if decay == "constant" or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / (total - warmup))
    shape = 1.0 - progress if decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_ratio + (1.0 - min_ratio) * shape


def warmup_decay_schedule(
    optimizer: torch.optim.Optimizer, *, total: int, warmup: int, decay: Decay = "linear", min_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-update schedule of :func:`lr_factor` (call ``step()`` after every update)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total=total, warmup=warmup, decay=decay, min_ratio=min_ratio)
    )


def torch_rng_state() -> dict[str, torch.Tensor]:
    """torch's RNG states: ``torch_cpu``, and ``torch_cuda<i>`` per CUDA device when CUDA is available."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"torch_cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return tensors


def restore_torch_rng(tensors: dict[str, torch.Tensor]) -> None:
    """Inverse of :func:`torch_rng_state` (CUDA states are restored when CUDA is available)."""
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = sorted((int(k[len("torch_cuda") :]), v) for k, v in tensors.items() if k.startswith("torch_cuda"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([v for _, v in cuda])
