"""Optional standardisation of a parsed molecule: salt stripping, neutralisation, stereo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from molw2s.config import StrictModel

if TYPE_CHECKING:
    from rdkit import Chem


class StandardizeOptions(StrictModel):
    """What to do to a molecule before writing its canonical SMILES.

    The default changes nothing but the spelling (canonical SMILES, stereo kept), so
    task molecules stay exactly the molecules their labels were measured on.
    """

    largest_fragment: bool = False
    """Keep only the largest fragment (salt / solvent stripping; organic fragments preferred)."""
    neutralize: bool = False
    """Neutralise charges where a neutral form exists (RDKit's Uncharger)."""
    keep_stereo: bool = True
    """Keep stereochemistry in the canonical SMILES; False removes it."""

    def is_identity(self) -> bool:
        """True when the options leave the molecule unchanged."""
        return not self.largest_fragment and not self.neutralize and self.keep_stereo


def standardize_mol(mol: Chem.Mol, options: StandardizeOptions) -> Chem.Mol:
    """Return a standardised copy of ``mol`` according to ``options`` (RDKit logs silenced)."""
    from rdkit import Chem, rdBase
    from rdkit.Chem.MolStandardize import rdMolStandardize

    with rdBase.BlockLogs():
        out = Chem.Mol(mol)
        if options.largest_fragment:
            out = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(out)
        if options.neutralize:
            out = rdMolStandardize.Uncharger().uncharge(out)
        if not options.keep_stereo:
            Chem.RemoveStereochemistry(out)
    return out
