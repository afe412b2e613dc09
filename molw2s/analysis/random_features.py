"""Summary of random-feature simulations: per-M_TE means and standard errors, the two
findings (docs/random_features.md), and how the predictor M relates to L_ST / L_TE."""

from __future__ import annotations

from typing import Any

import numpy as np

from molw2s.analysis.correlations import correlation
from molw2s.theory.random_features import RepeatResult


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Slope of the least-squares line through (log x, log y) (numpy.polyfit, degree 1)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("log-log slope needs positive values")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _mean_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and its standard error (0 with a single repeat)."""
    n = values.shape[0]
    se = values.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(values.shape[1:])
    return values.mean(axis=0), se


def summarize(results: list[RepeatResult]) -> dict[str, Any]:
    """Aggregate repeats: per-M_TE means and standard errors, the two findings, and how
    the predictor M relates to L_ST / L_TE (Spearman over all (repeat, M_TE) points)."""
    if not results:
        raise ValueError("no repeats to summarise")
    first = results[0]
    L_te = np.array([r.teacher_loss for r in results])  # (R, K)
    L_best = np.array([r.best_student_loss for r in results])
    L_rep = np.array([r.report_student_loss for r in results])  # (R, K, T)
    ratio_best, ratio_rep = L_best / L_te, L_rep / L_te[:, :, None]

    rb_mean, rb_se = _mean_se(ratio_best)
    rr_mean, rr_se = _mean_se(ratio_rep)
    summary: dict[str, Any] = {
        "repeats": len(results),
        "m_teachers": first.m_teachers,
        "report_times": first.report_times,
        "teacher_loss_mean": _mean_se(L_te)[0].tolist(),
        "best_student_loss_mean": _mean_se(L_best)[0].tolist(),
        "best_time_median": np.median([r.best_time for r in results], axis=0).tolist(),
        "ratio_best_mean": rb_mean.tolist(),
        "ratio_best_se": rb_se.tolist(),
        "ratio_report_mean": rr_mean.T.tolist(),  # [time][teacher]
        "ratio_report_se": rr_se.T.tolist(),
        "finding_a": {
            "ratio_best_below_one_all": bool(np.all(rb_mean < 1)),
            "spearman_ratio_best_vs_m_te": correlation(np.array(first.m_teachers, float), rb_mean, "spearman"),
            "ratio_best_decreasing": bool(np.all(np.diff(rb_mean) < 0)),
        },
        "finding_b": {
            "slope_best": loglog_slope(L_te.ravel(), L_best.ravel()),
            "slope_best_per_repeat": [loglog_slope(a, b) for a, b in zip(L_te, L_best)],
            "slope_report": [loglog_slope(L_te.ravel(), L_rep[:, :, j].ravel()) for j in range(L_rep.shape[2])],
        },
        "mc_check_max_abs_z": _mc_max_z(results),
    }
    if first.predictor_M:
        M = np.array([r.predictor_M for r in results])  # (R, K, T)
        G = np.array([r.predictor_predgap_hat for r in results])
        summary["predictor"] = {
            "M_mean": _mean_se(M)[0].T.tolist(),  # [time][teacher]
            "M_F_mean": _mean_se(np.array([r.predictor_M_F for r in results]))[0].T.tolist(),
            "predgap_hat_mean": _mean_se(G)[0].T.tolist(),
            "k_w": first.predictor_k_w,
            "k_s": first.predictor_k_s,
            "spearman_M_vs_ratio": [
                correlation(M[:, :, j].ravel(), ratio_rep[:, :, j].ravel(), "spearman") for j in range(M.shape[2])
            ],
            "spearman_M_vs_student_loss": [
                correlation(M[:, :, j].ravel(), L_rep[:, :, j].ravel(), "spearman") for j in range(M.shape[2])
            ],
            "spearman_predgap_hat_vs_student_loss": [
                correlation(G[:, :, j].ravel(), L_rep[:, :, j].ravel(), "spearman") for j in range(G.shape[2])
            ],
        }
    return summary


def _mc_max_z(results: list[RepeatResult]) -> float:
    """Largest |exact - Monte Carlo| / standard error over all teachers and repeats."""
    z = []
    for r in results:
        z += [abs(e - m) / s for e, m, s in zip(r.teacher_loss, r.mc_teacher_loss, r.mc_teacher_loss_se)]
        z += [abs(e - m) / s for e, m, s in zip(r.best_student_loss, r.mc_best_student_loss, r.mc_best_student_loss_se)]
    return float(max(z))
