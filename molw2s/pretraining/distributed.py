"""Data-parallel context: torchrun's environment when present, one process otherwise.

``torchrun`` (or ``accelerate launch``, which uses the same variables) sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; without them the same code runs as a single process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch

from molw2s.encoders.device import resolve_device
from molw2s.errors import MolW2SError

T = TypeVar("T")

#: how long a collective of training may wait for a rank (rank 0 alone evaluates and
#: writes checkpoints and models, minutes at most); NCCL's default is 10 minutes
PROCESS_GROUP_TIMEOUT = timedelta(minutes=60)
#: how long the other ranks wait for rank 0 to prepare the data (descriptor targets of a
#: large corpus can take hours)
DATA_WAIT_TIMEOUT = timedelta(hours=48)


@dataclass(frozen=True)
class DistContext:
    """Rank, world size and device of this process."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and shows the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.distributed:
            torch.distributed.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out


def init_distributed(device_preference: str = "auto") -> DistContext:
    """Join the process group torchrun set up (idempotent), or describe the single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world_size > 1 and not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo", timeout=PROCESS_GROUP_TIMEOUT
        )
    return DistContext(rank=rank, world_size=world_size, device=device)


def from_main(dist: DistContext, make: Callable[[], T]) -> T:
    """``make()`` computed on rank 0 and handed to every rank (pickled).

    The other ranks neither compute it (the vocabulary, the split, the descriptor targets
    are rank 0's) nor wait in an NCCL collective, whose watchdog would kill them after
    :data:`PROCESS_GROUP_TIMEOUT`: they wait in a CPU (gloo) group with
    :data:`DATA_WAIT_TIMEOUT`. If rank 0 fails, the others stop with its error."""
    if not dist.distributed:
        return make()
    group = torch.distributed.new_group(backend="gloo", timeout=DATA_WAIT_TIMEOUT)
    box: list[Any] = [None]
    failure: Exception | None = None
    if dist.is_main:
        try:
            box[0] = make()
        except Exception as exc:
            failure, box[0] = exc, MolW2SError(f"rank 0 failed: {exc}")
    try:
        torch.distributed.broadcast_object_list(box, src=0, group=group)
    finally:
        torch.distributed.destroy_process_group(group)
    if failure is not None:
        raise failure
    if isinstance(box[0], MolW2SError):
        raise box[0]
    return box[0]  # type: ignore[no-any-return]


def shutdown_distributed() -> None:
    """Leave the process group, if this process joined one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
