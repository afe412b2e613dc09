"""RDKit chemistry: parsing and standardising SMILES, randomised SMILES, descriptors.

Import the submodules directly (``from molw2s.chem.smiles import parse_smiles``); this
package imports nothing so that ``import molw2s.chem`` stays cheap.
"""
