"""Diversity of a set of molecules and scaffold-clustered (low-diversity) subsets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from molw2s.data.splits import murcko_scaffold
from molw2s.encoders.fingerprints import ECFPEncoder


def scaffold_clustered_subset(smiles: Sequence[str], size: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of ``size`` molecules taken as whole Bemis-Murcko scaffold groups,
    largest groups first (ties broken by a seeded shuffle), the last group cut to fit: few
    large clusters, so a subset of low diversity."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(smiles):
        groups.setdefault(murcko_scaffold(s), []).append(i)
    keys = list(groups)
    tiebreak = np.random.default_rng(seed).permutation(len(keys))
    ordered = sorted(range(len(keys)), key=lambda k: (-len(groups[keys[k]]), tiebreak[k]))
    chosen: list[int] = []
    for k in ordered:
        chosen.extend(groups[keys[k]][: size - len(chosen)])
        if len(chosen) >= size:
            break
    return np.sort(np.asarray(chosen, dtype=np.int64))


def diversity(smiles: Sequence[str]) -> dict[str, float]:
    """``n_scaffolds`` (distinct Bemis-Murcko scaffolds) and ``tanimoto_distance`` (mean
    pairwise 1 - Tanimoto similarity of ECFP4-2048 bits) of a set of molecules."""
    bits = ECFPEncoder(radius=2, nbits=2048).encode(list(smiles)).astype(np.float64)
    inter = bits @ bits.T
    counts = bits.sum(axis=1)
    union = counts[:, None] + counts[None, :] - inter
    sim = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
    n = len(bits)
    mean_sim = (sim.sum() - np.trace(sim)) / (n * (n - 1)) if n > 1 else 1.0
    return {"n_scaffolds": float(len({murcko_scaffold(s) for s in smiles})), "tanimoto_distance": 1.0 - float(mean_sim)}
