"""W2S cells computed in worker processes, for the sweep of a task.

Cells are independent, and each is many mid-sized dense problems (ridge solves,
eigendecompositions) for which threaded BLAS mostly adds synchronisation, so the sweep
runs its cells with one BLAS thread each: in this process, or spread over forked worker
processes (on Linux) that inherit the representations without a copy and keep their own
operator caches. A cell's numbers do not depend on where it ran (tested).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from molw2s.experiment.cell import CellSplit, OperatorCache, run_cell
from molw2s.experiment.config import ExperimentConfig
from molw2s.processes import start_child, stop_on_exit

#: a task with fewer cells to compute runs them in this process
PARALLEL_CELLS_FROM = 16

_WORKER: dict[str, Any] = {}


def sweep_jobs(config: ExperimentConfig) -> int:
    """Worker processes for the cells: ``sweep_jobs``, or every core up to 16."""
    return config.sweep_jobs or min(os.cpu_count() or 1, 16)


def compute_cells(
    cells: Sequence[tuple[CellSplit, str]],
    representations: Mapping[str, np.ndarray],
    y: np.ndarray,
    config: ExperimentConfig,
    *,
    jobs: int,
) -> Iterator[dict[str, Any]]:
    """:func:`~molw2s.experiment.cell.run_cell` of each (split, weak model) of ``cells``
    against ``config.strong``, in order: in ``jobs`` forked worker processes on Linux when
    there are at least ``PARALLEL_CELLS_FROM`` cells, else in this process.

    Forked workers only run closed-form heads (numpy and scipy): callers keep cells that
    train with torch (SGD heads, finetuned students) in this process (``jobs=1``).
    """
    if jobs <= 1 or len(cells) < PARALLEL_CELLS_FROM or sys.platform != "linux":
        operators = OperatorCache()
        with threadpool_limits(limits=1, user_api="blas"):
            for split, name in cells:
                yield _cell(representations, y, config, operators, split, name)
        return
    _WORKER.update(representations=representations, y=y, config=config)  # inherited by the fork
    try:
        pool = ProcessPoolExecutor(
            max_workers=min(jobs, len(cells)),
            mp_context=get_context("fork"),
            initializer=start_child,
            initargs=(os.getpid(), _start_worker),
        )
        with stop_on_exit(pool):
            futures = [pool.submit(_worker_cell, split, name) for split, name in cells]
            for future in futures:
                yield future.result()
    finally:
        _WORKER.clear()


def _start_worker() -> None:
    _WORKER.update(operators=OperatorCache(), blas=threadpool_limits(limits=1, user_api="blas"))


def _worker_cell(split: CellSplit, name: str) -> dict[str, Any]:
    return _cell(_WORKER["representations"], _WORKER["y"], _WORKER["config"], _WORKER["operators"], split, name)


def _cell(
    representations: Mapping[str, np.ndarray],
    y: np.ndarray,
    config: ExperimentConfig,
    operators: OperatorCache,
    split: CellSplit,
    name: str,
) -> dict[str, Any]:
    """One cell of weak model ``name`` against ``config.strong``, sharing ``operators``."""
    return run_cell(
        representations[name],
        representations[config.strong],
        y,
        split,
        config,
        operators=operators,
        names=(name, config.strong),
    )
