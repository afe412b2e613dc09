"""Controlled weak representations made from a strong one (pure numpy, seeded).

Each keeps a known, adjustable share of what the strong representation H holds, so the
ordering of what a weak model misses is known by construction:

- :func:`random_subspace`: H projected onto a random ``k``-dimensional subspace of its
  feature space (smaller ``k``: less kept);
- :func:`add_noise`: H plus isotropic Gaussian noise whose std is ``level`` times the
  RMS of H's centred features (larger ``level``: less kept);
- :func:`mix`: H and another representation F (e.g. a fingerprint), each centred and
  scaled to unit mean feature variance, weighted ``sqrt(1 - w)`` and ``sqrt(w)`` and
  concatenated (larger ``w``: more F, less H).

The same seed gives the same representation for every task, so a controlled weak model
means the same transformation everywhere.
"""

from __future__ import annotations

import numpy as np

from molw2s.errors import ConfigError


def random_subspace(H: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """``H @ Q`` with ``Q`` (d x k) orthonormal, drawn from a seeded Gaussian matrix (float32)."""
    H = np.asarray(H, dtype=np.float64)
    d = H.shape[1]
    if not 1 <= k <= d:
        raise ConfigError(f"subspace dimension k={k} must lie in [1, {d}] (the strong representation's width)")
    Q, _ = np.linalg.qr(np.random.default_rng([seed, k, d]).normal(size=(d, k)))
    projected: np.ndarray = (H @ Q).astype(np.float32)
    return projected


def add_noise(H: np.ndarray, level: float, seed: int = 0) -> np.ndarray:
    """``H`` plus N(0, (level * rms)^2) noise per entry, rms = RMS of H's centred features."""
    if not (np.isfinite(level) and level >= 0):
        raise ConfigError(f"noise level must be finite and >= 0, got {level}")
    H = np.asarray(H, dtype=np.float64)
    rms = float(np.sqrt(np.mean((H - H.mean(axis=0)) ** 2)))
    noise = np.random.default_rng([seed, round(level * 1e6)]).normal(scale=level * rms, size=H.shape)
    noisy: np.ndarray = (H + noise).astype(np.float32)
    return noisy


def mix(H: np.ndarray, F: np.ndarray, weight: float) -> np.ndarray:
    """``[sqrt(1 - w) * norm(H), sqrt(w) * norm(F)]`` with ``norm`` centring and scaling to
    unit mean feature variance; ``w = 0`` keeps H alone, ``w = 1`` F alone (float32)."""
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"mix weight must lie in [0, 1], got {weight}")
    if len(H) != len(F):
        raise ConfigError(f"cannot mix representations of {len(H)} and {len(F)} molecules")
    mixed: np.ndarray = np.hstack(
        [np.sqrt(1.0 - weight) * _unit_variance(H), np.sqrt(weight) * _unit_variance(F)]
    ).astype(np.float32)
    return mixed


def _unit_variance(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    centred: np.ndarray = X - X.mean(axis=0)
    scale = float(np.sqrt(np.mean(centred**2)))
    return centred / scale if scale > 0 else centred
