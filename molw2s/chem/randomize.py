"""Randomised SMILES (a random atom order, the same molecule) for augmentation, seeded by numpy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from molw2s.chem.smiles import mol_from_smiles
from molw2s.errors import DataError

if TYPE_CHECKING:
    from rdkit import Chem


def randomize_mol(mol: Chem.Mol, rng: np.random.Generator) -> str:
    """A non-canonical SMILES of ``mol`` written from a random atom order (stereo kept)."""
    return renumbered_smiles(mol, rng.permutation(mol.GetNumAtoms()))


def renumbered_smiles(mol: Chem.Mol, order: Sequence[int] | np.ndarray) -> str:
    """The non-canonical SMILES of ``mol`` written with its atoms in ``order`` (a
    permutation of ``0 .. n_atoms - 1``, e.g. drawn ahead of time by ``rng.permutation``)."""
    from rdkit import Chem

    if len(order) != mol.GetNumAtoms():
        raise DataError(
            f"atom order of length {len(order)} for a molecule of {mol.GetNumAtoms()} atoms ({Chem.MolToSmiles(mol)})"
        )
    return Chem.MolToSmiles(Chem.RenumberAtoms(mol, [int(i) for i in order]), canonical=False)


def randomized_smiles(smiles: str, rng: np.random.Generator) -> str:
    """One randomised SMILES of ``smiles``; raises :class:`DataError` if it does not parse."""
    return randomize_mol(parse_or_raise(smiles), rng)


def enumerate_smiles(smiles: str, n: int, seed: int = 0) -> list[str]:
    """``n`` independent randomised SMILES of one molecule (repeats possible for small ones)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    mol = parse_or_raise(smiles)
    rng = np.random.default_rng(seed)
    return [randomize_mol(mol, rng) for _ in range(n)]


def parse_or_raise(smiles: str) -> Chem.Mol:
    """The molecule of ``smiles``; :class:`DataError` with RDKit's reason if it does not parse."""
    mol, reason = mol_from_smiles(smiles)
    if mol is None:
        raise DataError(f"cannot randomise invalid SMILES {smiles!r}: {reason}")
    return mol
