"""Randomised SMILES (a random atom order, the same molecule) for augmentation, seeded by numpy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from molw2s.chem.smiles import mol_from_smiles
from molw2s.errors import DataError

if TYPE_CHECKING:
    from rdkit import Chem


def randomize_mol(mol: Chem.Mol, rng: np.random.Generator) -> str:
    """A non-canonical SMILES of ``mol`` written from a random atom order (stereo kept)."""
    from rdkit import Chem

    order = rng.permutation(mol.GetNumAtoms()).tolist()
    return Chem.MolToSmiles(Chem.RenumberAtoms(mol, order), canonical=False)


def randomized_smiles(smiles: str, rng: np.random.Generator) -> str:
    """One randomised SMILES of ``smiles``; raises :class:`DataError` if it does not parse."""
    return randomize_mol(_parse_or_raise(smiles), rng)


def enumerate_smiles(smiles: str, n: int, seed: int = 0) -> list[str]:
    """``n`` independent randomised SMILES of one molecule (repeats possible for small ones)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    mol = _parse_or_raise(smiles)
    rng = np.random.default_rng(seed)
    return [randomize_mol(mol, rng) for _ in range(n)]


def _parse_or_raise(smiles: str) -> Chem.Mol:
    mol, reason = mol_from_smiles(smiles)
    if mol is None:
        raise DataError(f"cannot randomise invalid SMILES {smiles!r}: {reason}")
    return mol
