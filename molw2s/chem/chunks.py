"""Work over many molecules in chunks: in this process, or in worker processes with a
bounded number of chunks in flight, results in input order, one progress bar.

The one chunk mapper behind SMILES parsing, the corpus's token counts and the ECFP / MACCS
featurisers (RDKit descriptors have their own watched pool, for their per-molecule time
limit). Results never depend on the number of processes.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from tqdm.auto import tqdm

from molw2s.processes import start_child, stop_on_exit
from molw2s.progress import show_progress

R = TypeVar("R")
T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of ``items`` of ``size`` (the last one shorter)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def map_chunks(
    fn: Callable[..., R],
    work: Iterable[tuple[Any, ...]],
    *,
    n: int,
    n_jobs: int,
    parallel_from: int,
    progress: bool,
    desc: str,
) -> Iterator[R]:
    """``fn(*args)`` for each ``args`` of ``work`` (chunks of ``n`` molecules in all, each
    ``args[0]`` a chunk), in order: in this process when ``n_jobs`` is 1 or ``n`` is below
    ``parallel_from``, else in ``n_jobs`` worker processes with at most ``2 * n_jobs`` chunks
    in flight. ``fn`` and its arguments must pickle; a worker's exception is raised here."""
    with tqdm(total=n, desc=desc, unit="mol", disable=not show_progress(progress)) as bar:
        if n_jobs <= 1 or n < parallel_from:
            for args in work:
                yield fn(*args)
                bar.update(len(args[0]))
            return
        # workers die with this process (even after kill -9) and stop at once on an interrupt
        executor = ProcessPoolExecutor(max_workers=n_jobs, initializer=start_child, initargs=(os.getpid(),))
        with stop_on_exit(executor) as pool:
            window: deque[tuple[int, Future[R]]] = deque()
            for args in work:
                window.append((len(args[0]), pool.submit(fn, *args)))
                if len(window) >= 2 * n_jobs:
                    size, future = window.popleft()
                    yield future.result()
                    bar.update(size)
            while window:
                size, future = window.popleft()
                yield future.result()
                bar.update(size)
