"""Linear heads on frozen representations and the weak-to-strong protocol (theory.md 1-2).

Import the submodules directly: ``molw2s.w2s.heads``, ``molw2s.w2s.protocol``,
``molw2s.w2s.metrics``, ``molw2s.w2s.features``, ``molw2s.w2s.arrays`` (reading .npy / .npz)
and ``molw2s.w2s.validation`` (input checks shared with ``molw2s.theory``).
"""
