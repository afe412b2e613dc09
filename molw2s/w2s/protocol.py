"""The weak-to-strong protocol (theory.md section 2, after Burns et al. 2023).

    f_w    = fit(h_w on D_w, gold y)          weak model
    yw_hat = f_w(h_w on D_s)                  weak labels
    f_w2s  = fit(h_s on D_s, yw_hat)          weak-to-strong model
    f_sc   = fit(h_s on D_s, gold y)          strong ceiling

Measured on the test rows: Err_w, Err_w2s, Err_sc (MSE, plus RMSE, MAE, R^2), PGR,
PredGap, Gain; Misfit on D_s. All heads standardise labels with D_w's mean and std;
errors are in the labels' original units. This module measures; the predictors of the
same cell are added by :func:`molw2s.experiment.cell.run_cell`, which reads the heads'
betas and scale factors from :class:`W2SResult`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from molw2s.errors import ConfigError, DataError
from molw2s.w2s.features import Scale
from molw2s.w2s.heads import HeadConfig, LinearHead, Solver
from molw2s.w2s.metrics import mse, pgr, regression_metrics
from molw2s.w2s.validation import as_matrix, as_vector, same_rows


@dataclass(frozen=True)
class W2SResult:
    """Measured quantities of one protocol run (errors in original label units; ``pgr``
    is None when Err_w == Err_sc, an ``r2_*`` is None when the test labels are constant).
    ``scale_factor_w`` / ``scale_factor_s`` are the trace-scaling factors the weak head
    (fitted on D_w) and the strong heads (fitted on D_s) used (1 for ``scale="none"``)."""

    err_w: float
    err_w2s: float
    err_sc: float
    rmse_w: float
    rmse_w2s: float
    rmse_sc: float
    mae_w: float
    mae_w2s: float
    mae_sc: float
    r2_w: float | None
    r2_w2s: float | None
    r2_sc: float | None
    pgr: float | None
    predgap: float
    gain: float
    misfit: float
    solver: Solver
    solver_w: Solver
    beta: float
    beta_w: float
    scale: Scale
    scale_factor_w: float
    scale_factor_s: float
    n_weak: int
    n_strong: int
    n_test: int

    def to_dict(self) -> dict[str, Any]:
        """One flat JSON-ready row of every field."""
        return asdict(self)


def check_indices(n_rows: int, **sets: np.ndarray) -> dict[str, np.ndarray]:
    """The named row-index sets as int arrays: 1-D, in range, no repeats, pairwise
    disjoint, non-empty; a DataError naming the offending set otherwise."""
    out: dict[str, np.ndarray] = {}
    for name, idx in sets.items():
        arr = np.asarray(idx)
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise DataError(
                f"{name} must be a non-empty 1-D array of integer row indices "
                f"(got shape {arr.shape}, dtype {arr.dtype})"
            )
        bad = arr[(arr < 0) | (arr >= n_rows)]
        if bad.size:
            raise DataError(f"{name} has {bad.size} indices outside [0, {n_rows}), e.g. {int(bad[0])}")
        if np.unique(arr).size != arr.size:
            raise DataError(f"{name} repeats row indices")
        out[name] = arr.astype(np.int64)
    names = list(out)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = np.intersect1d(out[a], out[b])
            if common.size:
                raise DataError(
                    f"{a} and {b} share {common.size} rows (e.g. row {int(common[0])}); they must be disjoint"
                )
    return out


def fit_weak_model(
    H_w: np.ndarray, y: np.ndarray, weak_idx: np.ndarray, head: HeadConfig, *, progress: bool = False
) -> LinearHead:
    """The weak model f_w: ``head`` fitted on D_w's gold labels, labels standardised with
    D_w's mean and std (the statistics every head of the protocol uses)."""
    return head.build(progress=progress).fit(
        H_w[weak_idx], y[weak_idx], label_mean=float(y[weak_idx].mean()), label_std=float(y[weak_idx].std())
    )


def run_w2s(
    H_w: np.ndarray,
    H_s: np.ndarray,
    y: np.ndarray,
    *,
    weak_idx: np.ndarray,
    strong_idx: np.ndarray,
    test_idx: np.ndarray,
    head: HeadConfig | None = None,
    weak_head: HeadConfig | None = None,
    progress: bool = False,
) -> W2SResult:
    """Run the protocol on full (N x d) representation matrices of one task.

    ``weak_idx`` / ``strong_idx`` / ``test_idx`` select D_w, D_s and the test rows
    (disjoint). ``head`` configures f_w2s and f_sc (default ``HeadConfig()``: ridge,
    beta 0.05, trace scaling), ``weak_head`` f_w (default: ``head``); both must use the
    same scaling.
    """
    H_w = as_matrix(H_w, "weak representation")
    H_s = as_matrix(H_s, "strong representation")
    y = as_vector(y, "labels")
    n = same_rows(weak_representation=H_w, strong_representation=H_s, labels=y)
    idx = check_indices(n, weak_idx=weak_idx, strong_idx=strong_idx, test_idx=test_idx)
    weak, strong, test = idx["weak_idx"], idx["strong_idx"], idx["test_idx"]
    if weak.size < 2 or strong.size < 2:
        raise DataError(f"D_w and D_s need at least 2 rows each (got {weak.size} and {strong.size})")
    head = head or HeadConfig()
    weak_head = weak_head or head
    if weak_head.scale != head.scale:
        raise ConfigError(f"weak and strong heads must use the same scale (got {weak_head.scale!r} and {head.scale!r})")

    f_w = fit_weak_model(H_w, y, weak, weak_head, progress=progress)
    label_stats = {"label_mean": f_w.label_mean_, "label_std": f_w.label_std_}
    weak_labels = f_w.predict(H_w[strong])
    f_w2s = head.build(progress=progress).fit(H_s[strong], weak_labels, **label_stats)
    f_sc = head.build(progress=progress).fit(H_s[strong], y[strong], **label_stats)

    pred_w, pred_w2s, pred_sc = f_w.predict(H_w[test]), f_w2s.predict(H_s[test]), f_sc.predict(H_s[test])
    m_w, m_w2s, m_sc = (regression_metrics(y[test], p) for p in (pred_w, pred_w2s, pred_sc))
    return W2SResult(
        err_w=m_w.mse,
        err_w2s=m_w2s.mse,
        err_sc=m_sc.mse,
        rmse_w=m_w.rmse,
        rmse_w2s=m_w2s.rmse,
        rmse_sc=m_sc.rmse,
        mae_w=m_w.mae,
        mae_w2s=m_w2s.mae,
        mae_sc=m_sc.mae,
        r2_w=m_w.r2,
        r2_w2s=m_w2s.r2,
        r2_sc=m_sc.r2,
        pgr=pgr(m_w.mse, m_w2s.mse, m_sc.mse),
        predgap=mse(pred_w2s, pred_sc),
        gain=m_w.mse - m_w2s.mse,
        misfit=mse(f_w2s.predict(H_s[strong]), weak_labels),
        solver=f_sc.solver,
        solver_w=f_w.solver,
        beta=float(f_sc.beta),
        beta_w=float(f_w.beta),
        scale=head.scale,
        scale_factor_w=f_w.scaling_.factor,
        scale_factor_s=f_sc.scaling_.factor,
        n_weak=int(weak.size),
        n_strong=int(strong.size),
        n_test=int(test.size),
    )
