"""Measured quantities of the W2S protocol (theory.md section 2). Pure functions.

Undefined ratios are ``None``, never NaN: PGR when Err_w == Err_sc (no gap to recover),
R^2 when the test labels are constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RegressionMetrics:
    """Errors of one model on one set, in the labels' original units."""

    mse: float
    rmse: float
    mae: float
    r2: float | None


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference."""
    return float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> RegressionMetrics:
    """MSE, RMSE, MAE and R^2 (None when ``y_true`` is constant)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    err = mse(y_true, y_pred)
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = None if ss_tot == 0.0 else 1.0 - err * y_true.size / ss_tot
    mae = float(np.mean(np.abs(y_true - np.asarray(y_pred, dtype=np.float64))))
    return RegressionMetrics(mse=err, rmse=float(np.sqrt(err)), mae=mae, r2=r2)


def pgr(err_w: float, err_w2s: float, err_sc: float) -> float | None:
    """Performance gap recovered, (Err_w - Err_w2s) / (Err_w - Err_sc); None if Err_w == Err_sc."""
    gap = err_w - err_sc
    return None if gap == 0.0 else (err_w - err_w2s) / gap


def pgr_of_means(err_w: object, err_w2s: object, err_sc: object) -> np.ndarray:
    """PGR elementwise over arrays of seed-mean errors (what a model's PGR is; never a mean
    of per-seed ratios); NaN where Err_w <= Err_sc, a model with no gap to recover."""
    w, w2s, sc = (np.asarray(v, dtype=np.float64) for v in (err_w, err_w2s, err_sc))
    gap = w - sc
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(gap > 0, (w - w2s) / gap, np.nan)
    return out
