"""Figures of the evaluation: predictor against measured W2S quantity, the theory check
(PredGap_hat against measured PredGap), PGR per weak model, and predicted-vs-measured
parity plots of finetuned models. PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from molw2s.analysis.correlations import correlation
from molw2s.io import atomic_path

LABELS = {
    "M": "M = ||P_s (I - P_w)||_op",
    "M_F": "M_F = ||P_s (I - P_w)||_F^2",
    "predgap_hat": "PredGap_hat",
    "predgap": "measured PredGap",
    "err_w2s": "Err_w2s (test MSE)",
    "err_w": "Err_w (test MSE)",
    "err_w2s_over_sc": "Err_w2s / Err_sc (same seed)",
    "pgr": "PGR",
    "gain": "Gain = Err_w - Err_w2s",
    "misfit": "Misfit",
    "cka": "linear CKA",
}


def _label(col: str) -> str:
    return LABELS.get(col, col)


def _model_means(table: pd.DataFrame, cols: list[str], model_col: str) -> pd.DataFrame:
    return table.groupby(model_col, sort=True)[cols].agg(["mean", "std"])


#: marker and colour cycles: 10 x 9 distinct (marker, colour) pairs key the weak models
_MARKERS = "osD^vP*Xh"
_COLORS = [f"C{i}" for i in range(10)]  # matplotlib's default (tab10) cycle


def model_style(k: int) -> dict[str, object]:
    """The marker and colour of the k-th weak model (distinct for the first 90)."""
    return {"marker": _MARKERS[(k // len(_COLORS)) % len(_MARKERS)], "color": _COLORS[k % len(_COLORS)]}


def seed_centered_spread(table: pd.DataFrame, cols: list[str], model_col: str, seed_col: str) -> pd.DataFrame:
    """Per model, the std over seeds of each value minus that seed's mean over models: the
    spread of a model's position relative to the others, with the test-set difficulty every
    model of a seed shares removed (0 with one seed)."""
    centered = table[cols] - table.groupby(seed_col)[cols].transform("mean")
    centered[model_col] = table[model_col]
    spread: pd.DataFrame = centered.groupby(model_col, sort=True)[cols].std().fillna(0.0)
    return spread


def predictor_scatter(
    table: pd.DataFrame,
    predictor: str,
    measured: str,
    *,
    model_col: str = "weak",
    seed_col: str = "seed",
    title: str = "",
) -> Figure:
    """Seed-mean predictor against seed-mean measured value per weak model, each model a
    marker in the legend (no text labels to overlap), the least-squares trend line, and
    Spearman rho in the title. Error bars: :func:`seed_centered_spread` (one std over
    seeds of the model's value minus the seed's mean over models)."""
    means = table.groupby(model_col, sort=True)[[predictor, measured]].mean()
    spread = seed_centered_spread(table, [predictor, measured], model_col, seed_col)
    x, y = means[predictor].to_numpy(float), means[measured].to_numpy(float)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for k, name in enumerate(means.index):
        ax.errorbar(
            x[k],
            y[k],
            xerr=spread.loc[name, predictor],
            yerr=spread.loc[name, measured],
            fmt=str(model_style(k)["marker"]),
            color=model_style(k)["color"],
            ms=6,
            capsize=2,
            alpha=0.9,
            label=str(name),
        )
    if len(x) >= 2 and np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        grid = np.linspace(x.min(), x.max(), 50)
        ax.plot(grid, slope * grid + intercept, "--", color="0.4", lw=1.2, label="least-squares trend")
    handles, names = ax.get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda i: names[i] == "least-squares trend")  # models first
    ax.legend(
        [handles[i] for i in order],
        [names[i] for i in order],
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=7,
        frameon=False,
    )
    rho = correlation(x, y, "spearman") if len(x) >= 2 else float("nan")
    ax.set_xlabel(_label(predictor))
    ax.set_ylabel(_label(measured))
    ax.set_title(f"{title}  Spearman rho = {rho:.2f} (n = {len(x)} weak models)".strip(), fontsize=10)
    fig.tight_layout()
    return fig


def theory_check_scatter(table: pd.DataFrame, *, title: str = "") -> Figure:
    """PredGap_hat against measured PredGap, every cell, with the line y = x."""
    x, y = table["predgap_hat"].to_numpy(float), table["predgap"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    ax.scatter(x, y, s=14, alpha=0.7)
    hi = float(np.nanmax(np.concatenate([x, y]))) if len(x) else 1.0
    ax.plot([0, hi], [0, hi], "k--", lw=1, label="y = x")
    ax.set_xlabel(_label("predgap_hat"))
    ax.set_ylabel(_label("predgap"))
    rho = correlation(x, y, "spearman") if len(x) >= 2 else float("nan")
    ax.set_title(f"{title}  Spearman rho = {rho:.2f}".strip(), fontsize=10)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def parity_plot(table: pd.DataFrame, *, title: str = "") -> Figure:
    """Predicted against measured values (columns ``predicted``, ``measured``, ``seed``),
    one colour per seed, with the line y = x and the RMSE of each seed in the legend."""
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    for k, (seed, part) in enumerate(table.groupby("seed", sort=True)):
        rmse = float(np.sqrt(np.mean((part["predicted"] - part["measured"]) ** 2)))
        ax.scatter(
            part["measured"],
            part["predicted"],
            s=12,
            alpha=0.6,
            color=_COLORS[k % len(_COLORS)],
            label=f"seed {seed}: RMSE {rmse:.3f}",
        )
    values = table[["measured", "predicted"]].to_numpy(float)
    lo, hi = (float(np.nanmin(values)), float(np.nanmax(values))) if values.size else (0.0, 1.0)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set_xlabel("measured")
    ax.set_ylabel("predicted")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def pgr_bars(table: pd.DataFrame, *, model_col: str = "weak", title: str = "") -> Figure:
    """PGR per weak model: mean over seeds with std error bars, sorted by mean M."""
    stats = _model_means(table, ["pgr", "M"], model_col).sort_values(("M", "mean"))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(stats) + 2), 4.0))
    ax.bar(range(len(stats)), stats[("pgr", "mean")], yerr=stats[("pgr", "std")].fillna(0), capsize=2)
    ax.set_xticks(range(len(stats)), [str(i) for i in stats.index], rotation=45, ha="right", fontsize=8)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("PGR (mean over seeds)")
    ax.set_title(f"{title}  weak models ordered by M".strip(), fontsize=10)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, stem: str | Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.svg`` atomically, close it, return the paths."""
    paths = []
    for fmt in formats:
        target = Path(f"{stem}.{fmt}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=120)
        paths.append(target)
    plt.close(fig)
    return paths
