"""W2S cells computed in worker processes, for the sweep of a task.

Cells are independent, and each is many mid-sized dense problems (ridge solves,
eigendecompositions) for which threaded BLAS mostly adds synchronisation, so the sweep
runs its cells with one BLAS thread each: in this process, or spread over spawned worker
processes. The representations reach the workers as memory-mapped ``.npy`` files written
once per task; each worker keeps its own operator cache. A cell's numbers do not depend
on where it ran (tested).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from molw2s.experiment.cell import CellSplit, OperatorCache, run_cell
from molw2s.experiment.config import ExperimentConfig

#: a task with fewer cells to compute runs them in this process (workers cost ~1 s to start)
PARALLEL_CELLS_FROM = 32

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
    scratch: Path,
) -> Iterator[dict[str, Any]]:
    """:func:`~molw2s.experiment.cell.run_cell` of each (split, weak model) of ``cells``
    against ``config.strong``, in order: in this process when ``jobs`` is 1 or there are
    fewer than ``PARALLEL_CELLS_FROM`` cells, else in ``jobs`` spawned processes that read
    the representations from files under ``scratch`` (removed afterwards)."""
    strong = config.strong
    if jobs <= 1 or len(cells) < PARALLEL_CELLS_FROM:
        operators = OperatorCache()
        with threadpool_limits(limits=1, user_api="blas"):
            for split, name in cells:
                yield run_cell(
                    representations[name],
                    representations[strong],
                    y,
                    split,
                    config,
                    operators=operators,
                    names=(name, strong),
                )
        return
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="representations-") as tmp:
        files = {}
        for i, name in enumerate(sorted({name for _, name in cells} | {strong})):
            files[name] = Path(tmp) / f"{i}.npy"
            np.save(files[name], np.asarray(representations[name]))
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(cells)),
            mp_context=get_context("spawn"),
            initializer=_start_worker,
            initargs=(files, np.asarray(y), config),
        ) as pool:
            futures = [pool.submit(_worker_cell, split, name) for split, name in cells]
            for future in futures:
                yield future.result()


def _start_worker(files: dict[str, Path], y: np.ndarray, config: ExperimentConfig) -> None:
    _WORKER.update(
        representations={name: np.load(path, mmap_mode="r") for name, path in files.items()},
        y=y,
        config=config,
        operators=OperatorCache(),
        blas=threadpool_limits(limits=1, user_api="blas"),  # for the worker's lifetime
    )


def _worker_cell(split: CellSplit, name: str) -> dict[str, Any]:
    reps, config = _WORKER["representations"], _WORKER["config"]
    return run_cell(
        reps[name],
        reps[config.strong],
        _WORKER["y"],
        split,
        config,
        operators=_WORKER["operators"],
        names=(name, config.strong),
    )
