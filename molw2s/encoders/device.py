"""Which torch device a model runs on, how many CPU cores this process may use, and the
GPU settings every CUDA path shares. Torch is imported where it is used, so the CPU
count costs no torch import (the fingerprint featurisers read it)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from molw2s.errors import ConfigError

if TYPE_CHECKING:
    import torch

#: dense bf16 peak FLOP/s (no sparsity) by device-name fragment, most specific first:
#: ``torch.cuda.get_device_name`` says "NVIDIA H100 80GB HBM3" for the SXM card,
#: "NVIDIA H100 PCIe" / "NVIDIA H100 NVL" for the others
PEAK_BF16 = (
    ("H200", 989e12),
    ("GH200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM (HBM3)
    ("H800", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10G", 70e12),
)


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cuda`` fails clearly without a GPU. A CUDA
    device comes with :func:`prepare_cuda`'s settings applied."""
    import torch

    if preference == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no CUDA device is available (use auto or cpu)")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    device = torch.device("cuda", local_rank)
    prepare_cuda(device)
    return device


def available_cpus() -> int:
    """CPU cores this process may run on: its affinity mask (``taskset``, Slurm, containers'
    cpusets) and the cgroup's CPU quota (``docker --cpus``), not the machine's count."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS, Windows)
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(count, quota) if quota is not None else count)


def _cgroup_cpu_quota() -> int | None:
    """The cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us``) CPU limit, rounded up; None if unlimited."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        return None if quota == "max" else -(-int(quota) // int(period))
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as q, open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as p:
            quota_us, period_us = int(q.read()), int(p.read())
        return None if quota_us <= 0 else -(-quota_us // period_us)
    except (OSError, ValueError):
        return None


def prepare_cuda(device: torch.device) -> None:
    """Settings of every CUDA path: TF32 tensor cores for float32 matrix products and
    convolutions (float32 paths, e.g. embedding without bf16, run ~8x faster on Ampere and
    later at ~1e-3 relative precision, what bf16 autocast already accepts); no-op on CPU."""
    import torch

    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def peak_bf16_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by its ``torch.cuda.get_device_name`` (None if unknown)."""
    return next((peak for fragment, peak in PEAK_BF16 if fragment in device_name), None)
