"""Normalisation of RDKit descriptors for MolBERT's PhysChem head (pure numpy).

Statistics come from the training split of the corpus and travel with the model (in its
``config.json``). Inputs must be finite (``molw2s.chem.descriptors`` already replaces
non-finite values by column medians and counts them). Constant descriptors are dropped;
targets are z-scores clipped to ``+-clip`` (heavy-tailed descriptors such as ``Ipc``
would otherwise dominate the loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PhysChemStats:
    """Which descriptors the head predicts and how they are normalised."""

    names: list[str]
    mean: list[float]
    std: list[float]
    clip: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the model config)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhysChemStats:
        """Inverse of :meth:`to_dict`."""
        return cls(names=list(data["names"]), mean=list(data["mean"]), std=list(data["std"]), clip=float(data["clip"]))


def fit_physchem_stats(values: np.ndarray, names: Sequence[str], *, clip: float) -> PhysChemStats:
    """Mean and std per descriptor; constant descriptors are dropped."""
    values = _finite_2d(values, len(names))
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    keep = std > 1e-12 * np.maximum(1.0, np.abs(mean))
    return PhysChemStats(
        names=[n for n, k in zip(names, keep) if k],
        mean=mean[keep].tolist(),
        std=std[keep].tolist(),
        clip=float(clip),
    )


def normalize_physchem(values: np.ndarray, names: Sequence[str], stats: PhysChemStats) -> np.ndarray:
    """Select ``stats.names`` from ``values`` (columns ``names``), z-score and clip (float32)."""
    col = {n: i for i, n in enumerate(names)}
    missing = [n for n in stats.names if n not in col]
    if missing:
        raise ValueError(f"descriptors missing from the table: {missing[:5]}")
    raw = _finite_2d(values, len(names))[:, [col[n] for n in stats.names]]
    z: np.ndarray = (raw - np.asarray(stats.mean)) / np.asarray(stats.std)
    out: np.ndarray = np.clip(z, -stats.clip, stats.clip).astype(np.float32)
    return out


def _finite_2d(values: np.ndarray, n_columns: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != n_columns:
        raise ValueError(f"descriptor values must have shape (n, {n_columns}), got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("descriptor values must be finite (impute them first)")
    return values
