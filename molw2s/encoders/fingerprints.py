"""Fingerprint and descriptor "encoders": fixed maps molecule -> R^d that can act as weak models.

Each computes its rows in worker processes for large inputs (:func:`featuriser_jobs`),
with a progress bar; the values never depend on the number of processes.

- ``ECFPEncoder``: Morgan fingerprints (ECFP-2r, ``nbits`` bits, or counts);
- ``MACCSEncoder``: the 167 MACCS keys;
- ``RDKitDescriptorEncoder``: the RDKit 2D descriptors (non-finite values imputed by
  ``molw2s.chem.descriptors``), by default through the fixed map sign(x) log(1 + |x|):
  raw descriptors span 1e-3 .. 1e30 (``Ipc``), and one such column would swamp every
  other in a linear head. The map is the same for every data set (no fitted statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from molw2s.chem.chunks import chunks, map_chunks
from molw2s.encoders.device import available_cpus
from molw2s.errors import DataError

#: inputs at least this large are featurised in worker processes (when ``n_jobs`` is None)
PARALLEL_FEATURISE_FROM = 1000


def featuriser_jobs(n_jobs: int | None, n: int) -> int:
    """``n_jobs``, or for None: every core (up to 16) for at least ``PARALLEL_FEATURISE_FROM``
    molecules, one process below."""
    if n_jobs is not None:
        return n_jobs
    return min(available_cpus(), 16) if n >= PARALLEL_FEATURISE_FROM else 1


def _first_invalid(smiles: Sequence[str]) -> None:
    """A DataError naming the row of the first SMILES that does not parse."""
    from molw2s.chem.smiles import mol_from_smiles

    for row, text in enumerate(smiles):
        mol, reason = mol_from_smiles(text)
        if mol is None:
            raise DataError(f"invalid SMILES {text!r}: {reason}", row=row, column="smiles")


class RowFeaturiser(Protocol):
    """A featuriser written molecule by molecule into float32 rows of a known width
    (fingerprints, molfeat calculators); it must pickle, to reach worker processes."""

    @property
    def name(self) -> str: ...

    @property
    def width(self) -> int: ...

    def row_writer(self) -> Callable[[Any, np.ndarray], None]: ...


def fingerprint_rows(encoder: RowFeaturiser, smiles: Sequence[str], n_jobs: int | None, progress: bool) -> np.ndarray:
    """(n, width) float32 rows of ``encoder``, in chunks over :func:`featuriser_jobs`
    processes; a DataError names the row of the first SMILES that does not parse."""
    jobs = featuriser_jobs(n_jobs, len(smiles))
    size = max(64, min(4096, -(-len(smiles) // (4 * jobs))))  # about 4 chunks per worker
    work = ((chunk, start, encoder) for start, chunk in zip(range(0, len(smiles), size), chunks(smiles, size)))
    out = np.zeros((len(smiles), encoder.width), dtype=np.float32)
    parts = map_chunks(
        _fingerprint_chunk,
        work,
        n=len(smiles),
        n_jobs=jobs,
        parallel_from=PARALLEL_FEATURISE_FROM,
        progress=progress,
        desc=encoder.name,
    )
    start = 0
    for part in parts:
        if isinstance(part, tuple):  # (row, SMILES, reason) of the chunk's first invalid one
            row, text, reason = part
            raise DataError(f"invalid SMILES {text!r}: {reason}", row=row, column="smiles")
        out[start : start + len(part)] = part
        start += len(part)
    return out


def _fingerprint_chunk(chunk: list[str], start: int, encoder: RowFeaturiser) -> np.ndarray | tuple[int, str, str]:
    """The chunk's rows, or (input row, SMILES, reason) of its first invalid SMILES."""
    from molw2s.chem.smiles import mol_from_smiles

    write = encoder.row_writer()
    out = np.zeros((len(chunk), encoder.width), dtype=np.float32)
    for i, text in enumerate(chunk):
        mol, reason = mol_from_smiles(text)
        if mol is None:
            return start + i, text, reason
        write(mol, out[i])
    return out


@dataclass(frozen=True)
class ECFPEncoder:
    """Morgan fingerprint of radius ``radius`` (ECFP-2r) folded to ``nbits``; ``n_jobs``
    processes (see :func:`featuriser_jobs`; the values do not depend on it)."""

    radius: int = 2
    nbits: int = 2048
    counts: bool = False
    n_jobs: int | None = None

    @property
    def name(self) -> str:
        """Spec string, e.g. ``ecfp4-2048``."""
        return f"ecfp{2 * self.radius}-{self.nbits}" + ("-counts" if self.counts else "")

    @property
    def width(self) -> int:
        """Features per molecule."""
        return self.nbits

    def identity(self) -> dict[str, Any]:
        """What the output depends on (for cache keys)."""
        from rdkit import rdBase

        return {
            "kind": "ecfp",
            "radius": self.radius,
            "nbits": self.nbits,
            "counts": self.counts,
            "rdkit": rdBase.rdkitVersion,
        }

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, nbits) float32 array of bits (or counts)."""
        return fingerprint_rows(self, smiles, self.n_jobs, progress)

    def row_writer(self) -> Callable[[Any, np.ndarray], None]:
        """Writes one molecule's fingerprint into a row."""
        from rdkit.Chem import rdFingerprintGenerator

        gen = rdFingerprintGenerator.GetMorganGenerator(radius=self.radius, fpSize=self.nbits)
        fingerprint = gen.GetCountFingerprintAsNumPy if self.counts else gen.GetFingerprintAsNumPy

        def write(mol: Any, row: np.ndarray) -> None:
            row[:] = fingerprint(mol)

        return write


@dataclass(frozen=True)
class MACCSEncoder:
    """The 167 MACCS structural keys; ``n_jobs`` as for :class:`ECFPEncoder`."""

    name: str = "maccs"
    n_jobs: int | None = None
    width: ClassVar[int] = 167

    def identity(self) -> dict[str, Any]:
        """What the output depends on (for cache keys)."""
        from rdkit import rdBase

        return {"kind": "maccs", "rdkit": rdBase.rdkitVersion}

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, 167) float32 array of key bits."""
        return fingerprint_rows(self, smiles, self.n_jobs, progress)

    def row_writer(self) -> Callable[[Any, np.ndarray], None]:
        """Writes one molecule's keys into a row."""
        from rdkit import DataStructs
        from rdkit.Chem import rdMolDescriptors

        def write(mol: Any, row: np.ndarray) -> None:
            # MACCSkeys.GenMACCSKeys is this very function (an alias the rdkit stubs omit)
            DataStructs.ConvertToNumpyArray(rdMolDescriptors.GetMACCSKeysFingerprint(mol), row)

        return write


@dataclass(frozen=True)
class RDKitDescriptorEncoder:
    """RDKit 2D descriptors, signed-log transformed unless ``raw``; ``n_jobs`` processes
    (see :func:`featuriser_jobs`; the values do not depend on it)."""

    raw: bool = False
    n_jobs: int | None = None

    @property
    def name(self) -> str:
        """Spec string: ``rdkit2d`` or ``rdkit2d-raw``."""
        return "rdkit2d-raw" if self.raw else "rdkit2d"

    def identity(self) -> dict[str, Any]:
        """What the output depends on (for cache keys)."""
        from rdkit import rdBase

        return {"kind": "rdkit2d", "raw": self.raw, "rdkit": rdBase.rdkitVersion}

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, ~210) float32 descriptor array."""
        from molw2s.chem.descriptors import compute_descriptors

        _first_invalid(smiles)  # a clear error naming the row, before the long computation
        jobs = featuriser_jobs(self.n_jobs, len(smiles))
        table = compute_descriptors(list(smiles), progress=progress, n_jobs=jobs)
        if table.timed_out:
            rows = table.timed_out
            raise DataError(
                f"RDKit descriptors of {len(rows)} molecule(s) exceeded the time limit, e.g. row {rows[0]} "
                f"({smiles[rows[0]][:60]!r}); exclude such molecules with a lower max_heavy_atoms in the task spec"
            )
        return table.values if self.raw else signed_log1p(table.values)


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|), elementwise, float32."""
    values = np.asarray(values, dtype=np.float64)
    out: np.ndarray = (np.sign(values) * np.log1p(np.abs(values))).astype(np.float32)
    return out
