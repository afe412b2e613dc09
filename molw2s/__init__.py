"""molw2s: weak-to-strong generalization experiments on molecules.

Submodules are imported lazily by the user (``from molw2s.theory import ...``) so that
``import molw2s`` stays cheap: RDKit, torch and transformers load only where used.
"""

__version__ = "0.1.0"
