"""The RDKit 2D descriptor set (``Descriptors._descList``, ~200 values) over a list of SMILES.

Non-finite values (NaN from a failing descriptor, inf, or a value beyond float32's range)
are replaced by the median of that descriptor's finite values over the input (0 when it
has none) and counted per descriptor. Unparsable SMILES, and molecules whose descriptors
take longer than the per-molecule time limit, are listed in ``failed_rows``; their rows
hold the same fill values so the array stays rectangular.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from molw2s.chem.smiles import mol_from_smiles
from molw2s.processes import start_child
from molw2s.progress import show_progress

_F32_MAX = float(np.finfo(np.float32).max)

log = logging.getLogger(__name__)


#: per-molecule time limit of the descriptor computation, in seconds
DEFAULT_DESCRIPTOR_TIMEOUT = 60.0
#: molecules up to this many heavy atoms take well under a second (a 100-atom chain: ~0.8 s),
#: so a single-process run computes them in-process; larger ones run under the time limit
FAST_HEAVY_ATOMS = 80
#: seconds a worker process may take to start and import RDKit
WORKER_START_TIMEOUT = 300.0


@dataclass
class DescriptorTable:
    """Descriptor matrix (float32, rows = input SMILES) with what had to be repaired.

    ``failed_rows`` are rows whose descriptors could not be computed (unparsable, or
    longer than the time limit: those are also in ``timed_out``); they hold fill values.
    """

    values: np.ndarray
    names: list[str]
    n_nonfinite: dict[str, int]
    failed_rows: list[int]
    timed_out: list[int] = field(default_factory=list)

    def report(self) -> str:
        """One line per repaired descriptor, plus the unparsable and timed-out rows."""
        lines = [f"{self.values.shape[0]} molecules x {len(self.names)} descriptors"]
        if self.failed_rows:
            lines.append(f"  failed rows (filled with medians): {self.failed_rows[:10]}")
        if self.timed_out:
            lines.append(f"  rows over the time limit: {self.timed_out[:10]}")
        for name, count in self.n_nonfinite.items():
            lines.append(f"  {name}: {count} non-finite value(s) replaced")
        return "\n".join(lines)


def descriptor_names() -> list[str]:
    """Names of the RDKit 2D descriptors, in column order."""
    from rdkit.Chem import Descriptors

    return [name for name, _ in Descriptors._descList]


def compute_descriptors(
    smiles: Sequence[str],
    *,
    progress: bool = False,
    n_jobs: int = 1,
    timeout: float | None = DEFAULT_DESCRIPTOR_TIMEOUT,
) -> DescriptorTable:
    """Compute every RDKit 2D descriptor for each SMILES.

    With ``n_jobs`` > 1 the molecules are spread over worker processes. ``timeout``
    bounds the seconds one molecule may take: molecules are computed in worker processes
    watched by this one (in-process when ``n_jobs`` is 1 and every molecule is small), and
    a molecule over the limit has its worker killed, is listed in ``timed_out`` and
    ``failed_rows``, and the others go on. ``timeout=None``: no limit.
    """
    from tqdm.auto import tqdm

    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    names = descriptor_names()
    items = list(smiles)
    watched = timeout is not None and (n_jobs > 1 or any(_heavy_atoms(s) > FAST_HEAVY_ATOMS for s in items))
    with tqdm(total=len(items), desc="descriptors", unit="mol", disable=not show_progress(progress)) as bar:
        if watched or n_jobs > 1:
            rows, timed_out = _watched_rows(items, n_jobs, timeout, len(names), bar.update)
        else:
            rows, timed_out = [], []
            for text in items:
                rows.append(descriptor_row(text))
                bar.update(1)
    raw = np.vstack(rows) if rows else np.zeros((0, len(names)))
    failed = np.flatnonzero(np.isnan(raw).all(axis=1))
    values, counts = fill_nonfinite(raw, skip_rows=failed)
    return DescriptorTable(
        values=values,
        names=names,
        n_nonfinite={names[j]: int(c) for j, c in enumerate(counts) if c},
        failed_rows=failed.tolist(),
        timed_out=timed_out,
    )


def descriptor_row(smiles: str) -> np.ndarray:
    """float64 descriptors of one SMILES; a row of NaN where the SMILES does not parse."""
    from rdkit.Chem import Descriptors

    out = np.full(len(Descriptors._descList), np.nan)
    mol, _ = mol_from_smiles(smiles)
    if mol is not None:
        values = Descriptors.CalcMolDescriptors(mol, missingVal=np.nan)  # type: ignore[no-untyped-call]
        out[:] = list(values.values())
    return out


def _watched_rows(
    items: list[str], n_jobs: int, timeout: float | None, width: int, advance: Callable[[int], object]
) -> tuple[list[np.ndarray], list[int]]:
    """Rows computed by a spawned worker pool, in order. Waiting for row i, every row
    before it is done, so row i is being computed: if it does not arrive within
    ``timeout`` seconds its pool is killed, it becomes a NaN row, and a fresh pool
    continues after it."""
    # spawn, not fork: callers (pretraining) may hold torch / OpenMP threads that fork would copy
    context = multiprocessing.get_context("spawn")
    rows: list[np.ndarray] = []
    timed_out: list[int] = []
    while len(rows) < len(items):
        workers = min(n_jobs, len(items) - len(rows))
        ready = context.Queue()
        pool = context.Pool(workers, initializer=start_child, initargs=(os.getpid(), _start_worker, ready))
        try:
            for _ in range(workers):  # the time limit starts once every worker has imported RDKit
                ready.get(timeout=WORKER_START_TIMEOUT)
            results = pool.imap(descriptor_row, items[len(rows) :])
            for _ in range(len(rows), len(items)):
                try:
                    rows.append(results.next(timeout=timeout))
                except multiprocessing.TimeoutError:
                    log.warning(
                        "descriptors of row %d took over %g s; skipped: %r", len(rows), timeout, items[len(rows)][:80]
                    )
                    timed_out.append(len(rows))
                    rows.append(np.full(width, np.nan))
                    advance(1)
                    break
                advance(1)
        finally:
            pool.terminate()
            pool.join()
    return rows, timed_out


def _start_worker(ready: Any) -> None:
    """Pool initializer: import the descriptor code, then say so."""
    from rdkit.Chem import Descriptors  # noqa: F401

    ready.put(True)


def _heavy_atoms(smiles: str) -> int:
    mol, _ = mol_from_smiles(smiles)
    return 0 if mol is None else int(mol.GetNumHeavyAtoms())


def fill_nonfinite(raw: np.ndarray, skip_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Replace non-finite or float32-overflowing entries by column medians; cast to float32.

    Returns the repaired float32 array and, per column, how many entries were replaced
    outside ``skip_rows`` (rows known to be missing as a whole, not counted).
    """
    raw = np.asarray(raw, dtype=np.float64)
    bad = ~np.isfinite(raw) | (np.abs(raw) > _F32_MAX)
    counted = bad.copy()
    if skip_rows is not None and len(skip_rows):
        counted[skip_rows] = False
    fill = np.zeros(raw.shape[1])
    for j in np.flatnonzero(bad.any(axis=0)):
        good = raw[~bad[:, j], j]
        fill[j] = np.median(good) if good.size else 0.0
    values = np.where(bad, fill[None, :], raw).astype(np.float32)
    return values, counted.sum(axis=0)
