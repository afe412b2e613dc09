"""Family members trained side by side, one worker process each (``parallel_members``).

Small members leave most of a machine idle: on a 2-core CPU a 1-thread member uses one
core, and on a GPU a small model is bound by its host loop. Training ``parallel_members``
of them at once in separate processes fills the machine without changing any member's
weights (each is the same deterministic, resumable run it is alone). Members are handed
out longest first (:func:`member_cost`), so the longest member starts at once and the
others share the remaining workers. Workers are spawned (never forked: the parent may
hold CUDA or OpenMP state); the prepared data goes to each worker once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molw2s.pretraining.config import FamilyConfig, MemberConfig
from molw2s.processes import start_child, stop_on_exit
from molw2s.tracking import Tracking

if TYPE_CHECKING:
    from molw2s.pretraining.corpus import PretrainingData

log = logging.getLogger(__name__)

#: the prepared data, set once in each worker by :func:`_init_worker`
_WORKER_DATA: dict[str, PretrainingData] = {}


@dataclass(frozen=True)
class MemberJob:
    """One member to train: where, under which configuration hash, at which bar position,
    under which replicate's pretraining seed (None: the member's own ``train.seed``)."""

    member: str
    member_dir: Path
    config_hash: str
    bar_position: int
    seed: int | None = None


def member_cost(family: FamilyConfig, member: MemberConfig) -> float:
    """Relative training cost: steps x molecules per step x encoder weights per token."""
    size = member.model
    per_layer = 4 * size.hidden_size**2 + 2 * size.hidden_size * size.intermediate_size
    batch = family.member_train(member).batch_size
    return float(member.steps * batch * size.num_layers * per_layer)


def longest_first(family: FamilyConfig, members: Sequence[MemberConfig]) -> list[MemberConfig]:
    """``members`` by decreasing :func:`member_cost` (ties keep their order)."""
    return sorted(members, key=lambda m: -member_cost(family, m))


def threads_per_member(processes: int) -> int:
    """CPU threads of each CPU worker when ``train.num_threads`` is unset: the cores this
    process may use (:func:`~molw2s.encoders.device.available_cpus`) shared out."""
    from molw2s.encoders.device import available_cpus

    return max(1, available_cpus() // processes)


def train_in_processes(
    family: FamilyConfig,
    jobs: Sequence[MemberJob],
    data: PretrainingData,
    *,
    processes: int,
    progress: bool,
    tracking: Tracking,
) -> None:
    """Train ``jobs`` (in the order given) in ``processes`` workers. The first failure is
    re-raised once the running members have stopped (their checkpoints let a rerun resume
    them); members not started yet are cancelled. An interrupt (SIGINT, SIGTERM) stops the
    running members at once, and a killed parent takes its workers with it
    (:mod:`molw2s.processes`)."""
    if callable(tracking):
        raise ValueError("parallel_members > 1 needs tracking given by name ('auto', 'tensorboard', 'none')")
    context = get_context("spawn")
    level = logging.getLogger().getEffectiveLevel()
    threads = threads_per_member(processes)
    settings = family.model_dump(mode="json")
    pool = ProcessPoolExecutor(
        max_workers=processes,
        mp_context=context,
        initializer=start_child,
        initargs=(os.getpid(), _init_worker, data, level),
    )
    with stop_on_exit(pool):
        futures: dict[Future[dict[str, Any]], str] = {
            pool.submit(_train_member, settings, job, progress, tracking, threads): job.member for job in jobs
        }
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            running = [futures[f] for f in pending if not f.cancel()]
            if running:
                log.error(
                    "member %s failed; waiting for %s to finish (Ctrl-C stops them: a rerun resumes them)",
                    futures[failed[0]],
                    ", ".join(running),
                )
            wait(pending)
            raise failed[0].exception()  # type: ignore[misc]


def _init_worker(data: PretrainingData, level: int) -> None:
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    _WORKER_DATA["data"] = data


def _train_member(
    settings: dict[str, Any], job: MemberJob, progress: bool, tracking: Tracking, threads: int
) -> dict[str, Any]:
    """Worker side: train one member to the end (resuming its checkpoints)."""
    import torch

    from molw2s.encoders.device import resolve_device
    from molw2s.pretraining.trainer import MemberTrainer

    family = FamilyConfig.model_validate(settings)
    member = family.member(job.member)
    train = family.member_train(member, job.seed)
    # a CUDA member's host side is its Python loop: more threads would only take cores from the batch workers
    cuda = resolve_device(train.device).type == "cuda"
    torch.set_num_threads(train.num_threads or (1 if cuda else threads))
    trainer = MemberTrainer(
        member,
        train,
        _WORKER_DATA["data"],
        job.member_dir,
        config_hash=job.config_hash,
        progress=progress,
        tracking=tracking,
        bar_position=job.bar_position,
    )
    return trainer.train()
