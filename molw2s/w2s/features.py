"""Centering and optional scaling of representations with training statistics.

theory.md section 1: features are centered with the training set's means, and optionally
scaled (``scale="trace"``: divided by the square root of the mean per-feature variance of
the training set, so that one beta means the same amount of regularisation for a 768-d
embedding and a binary fingerprint). The heads and the predictor both go through
:func:`fit_scaling`, so the predictor sees exactly the features the heads saw.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from molw2s.errors import ConfigError

Scale = Literal["none", "trace"]
SCALES: tuple[str, ...] = get_args(Scale)
#: the one scaling default of the heads (``RidgeHead``, ``SGDHead``, ``HeadConfig``)
DEFAULT_SCALE: Scale = "trace"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureScaling:
    """Training statistics: ``transform(H) = (H - mean) / factor``."""

    mean: np.ndarray
    factor: float
    scale: Scale

    def transform(self, H: np.ndarray) -> np.ndarray:
        """Center with the training means and divide by the training factor (a new array)."""
        out: np.ndarray = np.asarray(H, dtype=np.float64) - self.mean
        if self.factor != 1.0:
            out /= self.factor
        return out


def check_scale(scale: str) -> Scale:
    """``scale`` if it is one of :data:`SCALES`, else a ConfigError listing them."""
    if scale not in SCALES:
        raise ConfigError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    return scale  # type: ignore[return-value]


def fit_scaling(H: np.ndarray, scale: Scale = "none", *, factor: float | None = None) -> FeatureScaling:
    """Column means of ``H`` and the scale factor (1 for ``"none"``).

    ``factor`` overrides the factor ``"trace"`` would compute (used to reproduce a head's
    scaling on another sample). A representation that is constant on ``H`` has no
    variance to scale: its factor is 1 (documented choice; it centers to zeros anyway).
    """
    check_scale(scale)
    H = np.asarray(H, dtype=np.float64)
    mean = H.mean(axis=0)
    if factor is not None:
        if not (np.isfinite(factor) and factor > 0):
            raise ConfigError(f"scale factor must be finite and > 0, got {factor!r}")
        return FeatureScaling(mean, float(factor), scale)
    if scale == "none":
        return FeatureScaling(mean, 1.0, scale)
    centered = H - mean
    mean_var = float(np.einsum("ij,ij->", centered, centered)) / centered.size
    if mean_var <= 0.0:
        log.warning("representation is constant on the training rows; trace scaling left it unscaled")
        return FeatureScaling(mean, 1.0, scale)
    return FeatureScaling(mean, float(np.sqrt(mean_var)), scale)


def head_factors(
    H_w: np.ndarray, H_s: np.ndarray, weak_rows: np.ndarray, strong_rows: np.ndarray, scale: Scale
) -> tuple[float, float]:
    """The trace factors P_w and P_s are built with: the weak head's, measured on D_w
    (``weak_rows``), and the strong heads', measured on D_s (``strong_rows``), so the
    predictor sees the features each head saw (theory.md section 4). Every predictor of a
    cell, of the multi-capability gap selection and of ``molw2s w2s`` uses this rule."""
    return tuple(  # type: ignore[return-value]
        fit_scaling(np.asarray(H, dtype=np.float64)[rows], scale).factor
        for H, rows in ((H_w, weak_rows), (H_s, strong_rows))
    )
