"""Data layer: corpora of SMILES, labelled tasks, splits, downloads and the local cache.

Import the submodules directly (``from molw2s.data.tasks import load_task``).
"""
