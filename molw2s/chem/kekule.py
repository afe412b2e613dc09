"""Kekulé SMILES in the input's atom order: the spelling MolBERT (Fabian et al. 2020) reads.

MolBERT's vocabulary has no aromatic atoms (``c``, ``n``, ...): its featurizer sanitizes
the parsed molecule (everything but RDKit's cleanup step), kekulizes it with the aromatic
flags cleared and writes it back without canonicalising, so ``c1ccccc1O`` reaches the
model as ``C1=CC=CC=C1O``. :func:`kekule_smiles` does the same with the installed RDKit.
"""

from __future__ import annotations


def kekule_smiles(smiles: str) -> str | None:
    """``smiles`` kekulized (explicit double bonds, no aromatic atoms), atoms in input order;
    None when RDKit cannot parse or kekulize it (RDKit's log silenced)."""
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            return None
        Chem.SanitizeMol(mol, Chem.SanitizeFlags.SANITIZE_ALL ^ Chem.SanitizeFlags.SANITIZE_CLEANUP, catchErrors=True)
        try:
            Chem.Kekulize(mol, clearAromaticFlags=True)
            out: str = Chem.MolToSmiles(mol, kekuleSmiles=True, canonical=False)
        except (ValueError, RuntimeError):  # Chem.KekulizeException is a ValueError
            return None
    return out
