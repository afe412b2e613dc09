"""The RDKit 2D descriptor set (``Descriptors._descList``, ~200 values) over a list of SMILES.

Non-finite values (NaN from a failing descriptor, inf, or a value beyond float32's range)
are replaced by the median of that descriptor's finite values over the input (0 when it
has none) and counted per descriptor. Unparsable SMILES are listed in ``failed_rows``;
their rows hold the same fill values so the array stays rectangular.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from molw2s.chem.smiles import mol_from_smiles

_F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class DescriptorTable:
    """Descriptor matrix (float32, rows = input SMILES) with what had to be repaired."""

    values: np.ndarray
    names: list[str]
    n_nonfinite: dict[str, int]
    failed_rows: list[int]

    def report(self) -> str:
        """One line per repaired descriptor, plus the unparsable rows."""
        lines = [f"{self.values.shape[0]} molecules x {len(self.names)} descriptors"]
        if self.failed_rows:
            lines.append(f"  unparsable SMILES (rows filled with medians): {self.failed_rows[:10]}")
        for name, count in self.n_nonfinite.items():
            lines.append(f"  {name}: {count} non-finite value(s) replaced")
        return "\n".join(lines)


def descriptor_names() -> list[str]:
    """Names of the RDKit 2D descriptors, in column order."""
    from rdkit.Chem import Descriptors

    return [name for name, _ in Descriptors._descList]


def compute_descriptors(
    smiles: Sequence[str], *, progress: bool = False, n_jobs: int = 1, chunk_size: int = 256
) -> DescriptorTable:
    """Compute every RDKit 2D descriptor for each SMILES (``n_jobs`` worker processes)."""
    from tqdm.auto import tqdm

    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    chunks = [list(smiles[i : i + chunk_size]) for i in range(0, len(smiles), chunk_size)]
    blocks: list[np.ndarray] = []
    with contextlib.ExitStack() as stack:
        # spawn, not fork: callers (pretraining) may hold torch / OpenMP threads that fork would copy
        spawn = multiprocessing.get_context("spawn")
        mapper = map if n_jobs == 1 else stack.enter_context(ProcessPoolExecutor(n_jobs, mp_context=spawn)).map
        bar = stack.enter_context(tqdm(total=len(smiles), desc="descriptors", unit="mol", disable=not progress))
        for block in mapper(raw_descriptor_block, chunks):
            blocks.append(block)
            bar.update(len(block))
    names = descriptor_names()
    raw = np.concatenate(blocks) if blocks else np.zeros((0, len(names)))
    failed = np.flatnonzero(np.isnan(raw).all(axis=1))
    values, counts = fill_nonfinite(raw, skip_rows=failed)
    return DescriptorTable(
        values=values,
        names=names,
        n_nonfinite={names[j]: int(c) for j, c in enumerate(counts) if c},
        failed_rows=failed.tolist(),
    )


def raw_descriptor_block(smiles: Sequence[str]) -> np.ndarray:
    """float64 descriptors of ``smiles``; a row of NaN where the SMILES does not parse."""
    from rdkit.Chem import Descriptors

    out = np.full((len(smiles), len(Descriptors._descList)), np.nan)
    for i, text in enumerate(smiles):
        mol, _ = mol_from_smiles(text)
        if mol is not None:
            values = Descriptors.CalcMolDescriptors(mol, missingVal=np.nan)  # type: ignore[no-untyped-call]
            out[i] = list(values.values())
    return out


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
