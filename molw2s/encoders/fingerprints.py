"""Fingerprint and descriptor "encoders": fixed maps molecule -> R^d that can act as weak models.

- ``ECFPEncoder``: Morgan fingerprints (ECFP-2r, ``nbits`` bits, or counts);
- ``MACCSEncoder``: the 167 MACCS keys;
- ``RDKitDescriptorEncoder``: the RDKit 2D descriptors (non-finite values imputed by
  ``molw2s.chem.descriptors``), by default through the fixed map sign(x) log(1 + |x|):
  raw descriptors span 1e-3 .. 1e30 (``Ipc``), and one such column would swamp every
  other in a linear head. The map is the same for every data set (no fitted statistics).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from molw2s.errors import DataError


def _mols(smiles: Sequence[str]) -> list[Any]:
    """RDKit molecules; a DataError naming the row of the first SMILES that does not parse."""
    from molw2s.chem.smiles import mol_from_smiles

    mols = []
    for row, text in enumerate(smiles):
        mol, reason = mol_from_smiles(text)
        if mol is None:
            raise DataError(f"invalid SMILES {text!r}: {reason}", row=row, column="smiles")
        mols.append(mol)
    return mols


@dataclass(frozen=True)
class ECFPEncoder:
    """Morgan fingerprint of radius ``radius`` (ECFP-2r) folded to ``nbits``."""

    radius: int = 2
    nbits: int = 2048
    counts: bool = False

    @property
    def name(self) -> str:
        """Spec string, e.g. ``ecfp4-2048``."""
        return f"ecfp{2 * self.radius}-{self.nbits}" + ("-counts" if self.counts else "")

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
        from rdkit.Chem import rdFingerprintGenerator
        from tqdm.auto import tqdm

        gen = rdFingerprintGenerator.GetMorganGenerator(radius=self.radius, fpSize=self.nbits)
        fp = gen.GetCountFingerprintAsNumPy if self.counts else gen.GetFingerprintAsNumPy
        mols = _mols(smiles)
        out = np.zeros((len(mols), self.nbits), dtype=np.float32)
        for i, mol in enumerate(tqdm(mols, desc=self.name, unit="mol", disable=not progress)):
            out[i] = fp(mol)
        return out


@dataclass(frozen=True)
class MACCSEncoder:
    """The 167 MACCS structural keys."""

    name: str = "maccs"

    def identity(self) -> dict[str, Any]:
        """What the output depends on (for cache keys)."""
        from rdkit import rdBase

        return {"kind": "maccs", "rdkit": rdBase.rdkitVersion}

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, 167) float32 array of key bits."""
        from rdkit import DataStructs
        from rdkit.Chem import rdMolDescriptors
        from tqdm.auto import tqdm

        mols = _mols(smiles)
        out = np.zeros((len(mols), 167), dtype=np.float32)
        for i, mol in enumerate(tqdm(mols, desc="maccs", unit="mol", disable=not progress)):
            # MACCSkeys.GenMACCSKeys is this very function (an alias the rdkit stubs omit)
            DataStructs.ConvertToNumpyArray(rdMolDescriptors.GetMACCSKeysFingerprint(mol), out[i])
        return out


#: tasks at least this large get their descriptors from worker processes
PARALLEL_DESCRIPTORS_FROM = 1000


@dataclass(frozen=True)
class RDKitDescriptorEncoder:
    """RDKit 2D descriptors, signed-log transformed unless ``raw``.

    ``n_jobs`` worker processes (None: every core, up to 16, for at least
    ``PARALLEL_DESCRIPTORS_FROM`` molecules; one process below); the values do not depend on it.
    """

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

        _mols(smiles)  # a clear error naming the row, before the long computation
        jobs = self.n_jobs
        if jobs is None:
            jobs = min(os.cpu_count() or 1, 16) if len(smiles) >= PARALLEL_DESCRIPTORS_FROM else 1
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
