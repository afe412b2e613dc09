"""Figures of the random-feature weak-to-strong simulator (theory.md section 7).

Each function takes the repeats and/or the summary of
:mod:`molw2s.theory.random_features` and returns a matplotlib Figure (Agg backend);
:func:`molw2s.analysis.plots.save_figure` writes it.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from molw2s.theory.random_features import RepeatResult


def _width_axis(ax: Axes, widths: np.ndarray) -> None:
    """A log2 x axis ticked at the teacher widths."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(v) for v in widths])
    ax.set_xlabel("teacher width M_TE")


def _finish(fig: Figure, ax: Axes, xlabel: str, ylabel: str, title: str) -> Figure:
    """Label the axes, add the title and legend, tighten the layout."""
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def ratio_vs_teacher_width(summary: dict[str, Any]) -> Figure:
    """Finding (a): L_ST / L_TE against M_TE, one line per report time plus the oracle best t."""
    m = np.asarray(summary["m_teachers"])
    fig, ax = plt.subplots(figsize=(6.0, 4.3))
    for t, mean, se in zip(summary["report_times"], summary["ratio_report_mean"], summary["ratio_report_se"]):
        ax.errorbar(m, mean, yerr=se, marker="o", ms=4, capsize=2, label=f"t = {t:g}")
    ax.errorbar(
        m,
        summary["ratio_best_mean"],
        yerr=summary["ratio_best_se"],
        marker="s",
        color="black",
        lw=2,
        capsize=2,
        label="best t on the grid (oracle)",
    )
    ax.axhline(1.0, color="grey", ls=":", lw=1)
    _width_axis(ax, m)
    title = f"(a) student/teacher loss ratio ({summary['repeats']} repeats, mean +- s.e.)"
    return _finish(fig, ax, "", "L_ST / L_TE", title)


def student_vs_teacher_loss(results: list[RepeatResult], summary: dict[str, Any]) -> Figure:
    """Finding (b): L_ST (best t) against L_TE on log-log axes with the fitted line and y = x."""
    log_te = np.log(np.array([r.teacher_loss for r in results]).ravel())
    log_st = np.log(np.array([r.best_student_loss for r in results]).ravel())
    slope = summary["finding_b"]["slope_best"]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.loglog(np.exp(log_te), np.exp(log_st), "o", ms=5, alpha=0.8, label="(repeat, M_TE)")
    grid = np.linspace(log_te.min(), log_te.max(), 50)
    fit = log_st.mean() + slope * (grid - log_te.mean())  # the least-squares line passes the centroid
    ax.loglog(np.exp(grid), np.exp(fit), "--", color="tab:red", label=f"fit: slope {slope:.2f}")
    ax.loglog(np.exp(grid), np.exp(grid), ":", color="grey", label="L_ST = L_TE")
    title = f"(b) L_ST against L_TE, log-log slope {slope:.2f}"
    return _finish(fig, ax, "teacher loss L_TE", "student loss L_ST (best t)", title)


def loss_curves(result: RepeatResult) -> Figure:
    """L_ST(t) / L_TE along the gradient flow for each teacher of one repeat."""
    fig, ax = plt.subplots(figsize=(6.0, 4.3))
    times = np.asarray(result.times)
    for m, l_te, curve in zip(result.m_teachers, result.teacher_loss, result.student_loss):
        ax.semilogx(times, np.asarray(curve) / l_te, label=f"M_TE = {m}")
    ax.axhline(1.0, color="grey", ls=":", lw=1)
    ax.set_ylim(0, 2)
    title = f"early stopping matters (repeat {result.repeat})"
    return _finish(fig, ax, "gradient-flow time t", "L_ST(t) / L_TE", title)


def predictor_vs_ratio(summary: dict[str, Any]) -> Figure:
    """M = ||P_s (I - P_w)||_op against M_TE (left) and against L_ST / L_TE (right)."""
    pred = summary["predictor"]
    m = np.asarray(summary["m_teachers"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 4.2))
    for t, M, ratio, rho in zip(
        summary["report_times"], pred["M_mean"], summary["ratio_report_mean"], pred["spearman_M_vs_ratio"]
    ):
        left.plot(m, M, marker="o", label=f"t = {t:g} (beta_s = {1 / (2 * t):.1e})")
        right.plot(M, ratio, marker="o", label=f"t = {t:g}: Spearman {rho:+.2f}")
    _width_axis(left, m)
    left.set_ylabel("M")
    right.set_xlabel("M")
    right.set_ylabel("L_ST / L_TE")
    for ax in (left, right):
        ax.legend(fontsize=7)
    fig.suptitle("the predictor M (theory.md section 4) on teacher / student features", fontsize=10)
    fig.tight_layout()
    return fig
