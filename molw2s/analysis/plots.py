"""Figures of the evaluation: a Burns et al. (2023)-style chart of the weak, W2S and ceiling
errors, PGR per weak model, the ranks of a predictor against the ranks of a measured W2S
quantity, the theory check (PredGap_hat against measured PredGap, log-log), and
predicted-vs-measured parity plots of finetuned models. PNG and SVG.

Every figure takes a table with a ``weak`` column (the model) and either one row per cell
(task, seed, weak model) or one row per weak model; what is plotted per model is the mean
over its rows (seed means), and errors are combined only after that averaging (PGR of the
seed-mean errors, RMSE as the square root of the seed-mean MSE). An optional ``kind``
column (:data:`KIND_MARKERS`, e.g. from :func:`molw2s.experiment.model_info.describe_models`)
sets each model's marker shape; colours key the models.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, NullFormatter

from molw2s.analysis.correlations import average_ranks, correlation
from molw2s.analysis.model_errors import seed_mean_errors
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

#: marker shape of each model kind (the kinds of :mod:`molw2s.experiment.model_info`);
#: a model without a kind, or of a kind not listed, is drawn as ``other``
KIND_MARKERS = {
    "transformer": "o",
    "fingerprint": "s",
    "descriptor": "D",
    "composite": "P",
    "controlled": "^",
    "other": "X",
}


#: the measured errors (seed-mean test MSEs) of the Burns chart and the PGR chart
def _label(col: str) -> str:
    return LABELS.get(col, col)


def model_colors(n: int) -> list[Any]:
    """``n`` distinct colours, one per weak model: matplotlib's tab10 (up to 10), tab20
    (up to 20), else ``n`` evenly spaced colours of the turbo colour map."""
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    return [plt.get_cmap("turbo")(v) for v in np.linspace(0.05, 0.95, n)]


def model_kinds(table: pd.DataFrame, model_col: str = "weak") -> pd.Series:
    """The kind of each model (its first ``kind`` value; ``other`` without the column or
    for a kind :data:`KIND_MARKERS` does not list), indexed by model."""
    if "kind" not in table.columns:
        return pd.Series("other", index=pd.Index(pd.unique(table[model_col]), name=model_col), name="kind")
    kinds = table.groupby(model_col, sort=False)["kind"].first()
    known: pd.Series = kinds.where(kinds.isin(list(KIND_MARKERS)), "other")
    return known


def model_errors(table: pd.DataFrame, *, model_col: str = "weak") -> pd.DataFrame:
    """:func:`molw2s.analysis.model_errors.seed_mean_errors` (seed-mean MSEs, their roots,
    PGR of the means) with each model's ``kind`` for its marker."""
    out = seed_mean_errors(table, model_col=model_col)
    out["kind"] = model_kinds(table, model_col)
    return out


def _ordered(errors: pd.DataFrame, table: pd.DataFrame, order_by: str, model_col: str) -> pd.DataFrame:
    """``errors`` sorted by the seed mean of ``order_by``, largest first (weakest on the left)."""
    key = errors[order_by] if order_by in errors else table.groupby(model_col, sort=False)[order_by].mean()
    ordered: pd.DataFrame = errors.loc[key.reindex(errors.index).sort_values(ascending=False, kind="stable").index]
    return ordered


def _kind_key(kinds: Collection[str]) -> list[Line2D]:
    """Legend entries of the marker shapes of ``kinds`` (grey); none when every model is
    of kind ``other`` (no kinds given)."""
    if set(kinds) <= {"other"}:
        return []
    return [
        Line2D([], [], ls="", marker=KIND_MARKERS[k], color="0.4", label=f"kind: {k}")
        for k in KIND_MARKERS
        if k in set(kinds)
    ]


def _outside_legend(ax: Axes, handles: list[Any]) -> None:
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)


def burns_chart(
    models: pd.DataFrame,
    *,
    title: str = "",
    units: str = "",
    order_by: str = "err_w",
    model_col: str = "weak",
) -> Figure:
    """A Burns et al. (2023)-style chart: per weak model (x, ordered by the seed mean of
    ``order_by``, largest first, e.g. ``err_w`` or ``M``) the test RMSE of the weak model
    (Err_w), of its W2S student (Err_w2s, joined to it by a line: the gap the student
    recovered) and of the strong ceiling (Err_sc: one horizontal line when it is the same
    for every model, else a dash per model), in the task's ``units``. RMSEs are square
    roots of seed-mean MSEs (:func:`model_errors`); marker shapes show the model kinds."""
    errors = _ordered(model_errors(models, model_col=model_col), models, order_by, model_col)
    x = np.arange(len(errors))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(errors) + 3.5), 4.3))
    ax.vlines(x, errors["rmse_w"], errors["rmse_w2s"], color="0.75", lw=1.5, zorder=1)
    for role, col, color in (("weak model (Err_w)", "rmse_w", "0.45"), ("W2S student (Err_w2s)", "rmse_w2s", "C0")):
        for kind, part in errors.groupby("kind", sort=False):
            ax.scatter(x[errors.index.get_indexer(part.index)], part[col], marker=KIND_MARKERS[str(kind)], color=color)
        ax.plot([], [], ls="", marker="o", color=color, label=role)
    sc = errors["rmse_sc"].to_numpy(float)
    if len(sc) and np.allclose(sc, sc[0], rtol=1e-9, atol=0.0):
        ax.axhline(sc[0], color="C3", ls="--", lw=1.2, label="strong ceiling (Err_sc)")
    else:
        ax.scatter(x, sc, marker="_", s=200, color="C3", label="strong ceiling (Err_sc, per model)")
    ax.set_xticks(x, [str(i) for i in errors.index], rotation=45, ha="right", fontsize=8)
    ax.set_xlabel(f"weak model (ordered by {_label(order_by)}, largest first)")
    ax.set_ylabel(f"test RMSE{f' ({units})' if units else ''} = sqrt(seed-mean MSE)")
    handles = ax.get_legend_handles_labels()[0] + _kind_key(errors["kind"])
    _outside_legend(ax, handles)
    ax.set_title(f"{title}  weak, W2S and strong-ceiling errors".strip(), fontsize=10)
    fig.tight_layout()
    return fig


def pgr_chart(
    table: pd.DataFrame,
    *,
    title: str = "",
    order_by: str = "err_w",
    model_col: str = "weak",
) -> Figure:
    """PGR per weak model as a dot chart (models on the y axis in the order of
    :func:`burns_chart`), PGR computed from the seed-mean errors (:func:`model_errors`),
    never as a mean of per-seed ratios; lines at 0 (no gain) and 1 (the ceiling reached).
    Models not weaker than the ceiling have no PGR: their count is in the title."""
    errors = _ordered(model_errors(table, model_col=model_col), table, order_by, model_col)
    y = np.arange(len(errors))[::-1]  # the first model on top
    fig, ax = plt.subplots(figsize=(6.5, max(3.0, 0.3 * len(errors) + 1.5)))
    ax.axvline(0.0, color="k", lw=0.8)
    ax.axvline(1.0, color="C3", ls="--", lw=0.8)
    ax.hlines(y, 0.0, errors["pgr"].fillna(0.0), color="0.8", lw=1.0, zorder=1)
    for kind, part in errors.groupby("kind", sort=False):
        ax.scatter(part["pgr"], y[errors.index.get_indexer(part.index)], marker=KIND_MARKERS[str(kind)], color="C0")
    ax.set_yticks(y, [str(i) for i in errors.index], fontsize=8)
    ax.set_xlabel("PGR = (Err_w - Err_w2s) / (Err_w - Err_sc) of seed-mean test MSEs")
    missing = int(errors["pgr"].isna().sum())
    note = f"; {missing} model(s) not weaker than the ceiling: no PGR" if missing else ""
    ax.set_title(f"{title}  PGR per weak model{note}".strip(), fontsize=10)
    if kinds := _kind_key(errors["kind"]):
        _outside_legend(ax, kinds)
    fig.tight_layout()
    return fig


def predictor_scatter(
    table: pd.DataFrame,
    predictor: str,
    measured: str,
    *,
    model_col: str = "weak",
    excluded: Collection[str] = (),
    title: str = "",
) -> Figure:
    """Rank of the seed-mean predictor (x) against rank of the seed-mean measured value
    (y) across weak models (1 = lowest, ties averaged; Spearman's rho is the Pearson
    correlation of these ranks), with the diagonal of perfect rank agreement. Each model
    has its colour and the marker of its kind, keyed in a legend (no point labels to
    overlap). Models in ``excluded`` are drawn hollow, ranked with the others, and left
    out of rho, which is in the title with the number of models it uses."""
    means = table.groupby(model_col, sort=True)[[predictor, measured]].mean()
    kinds = model_kinds(table, model_col).reindex(means.index)
    rx, ry = average_ranks(means[predictor].to_numpy(float)), average_ranks(means[measured].to_numpy(float))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    n = len(means)
    ax.plot([1, max(n, 1)], [1, max(n, 1)], ls=":", color="0.6", lw=1, label="perfect rank agreement")
    for k, (name, color) in enumerate(zip(means.index, model_colors(n))):
        hollow = name in excluded
        ax.plot(
            rx[k],
            ry[k],
            ls="",
            marker=KIND_MARKERS[kinds[name]],
            ms=7,
            color=color,
            mfc="none" if hollow else color,
            label=f"{name} (excluded)" if hollow else str(name),
        )
    handles = ax.get_legend_handles_labels()[0]
    _outside_legend(ax, [*handles[1:], handles[0], *_kind_key(kinds)])
    used = ~means.index.isin(list(excluded))
    x, y = means[predictor].to_numpy(float)[used], means[measured].to_numpy(float)[used]
    rho = correlation(x, y, "spearman") if len(x) >= 2 else float("nan")
    ticks = np.arange(1, n + 1)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel(f"rank of {_label(predictor)} (seed means, 1 = lowest)")
    ax.set_ylabel(f"rank of {_label(measured)} (seed means, 1 = lowest)")
    n_out = n - int(used.sum())
    note = f"; {n_out} excluded, hollow" if n_out else ""
    ax.set_title(f"{title}  Spearman rho = {rho:.2f} (n = {int(used.sum())} weak models{note})".strip(), fontsize=10)
    fig.tight_layout()
    return fig


def theory_check_scatter(table: pd.DataFrame, *, model_col: str = "weak", title: str = "") -> Figure:
    """PredGap_hat (x) against measured PredGap (y) on log-log axes with the line y = x:
    every cell as a small marker and each weak model's seed means as a large one, one
    colour per model (marker shape: its kind). Points with a value <= 0 (or not finite)
    cannot be drawn on log axes and are dropped, their count in the title; Spearman's rho
    across weak models of the seed means (all of them) is in the title too."""
    cols = ["predgap_hat", "predgap"]
    means = table.groupby(model_col, sort=True)[cols].mean()
    kinds = model_kinds(table, model_col).reindex(means.index)
    fig, ax = plt.subplots(figsize=(7.0, 5.0))
    shown: list[np.ndarray] = []
    dropped = 0
    for name, color in zip(means.index, model_colors(len(means))):
        cells = table.loc[table[model_col] == name, cols].to_numpy(float)
        ok = np.isfinite(cells).all(axis=1) & (cells > 0).all(axis=1)
        dropped += int((~ok).sum())
        marker = KIND_MARKERS[kinds[name]]
        ax.scatter(cells[ok, 0], cells[ok, 1], s=12, alpha=0.5, color=color, marker=marker)
        mean = means.loc[name].to_numpy(float)
        if np.isfinite(mean).all() and (mean > 0).all():
            ax.scatter(
                mean[0], mean[1], s=70, color=color, marker=marker, edgecolors="k", linewidths=0.6, label=str(name)
            )
            shown.append(mean)
        shown.append(cells[ok].ravel())
    values = np.concatenate(shown) if shown else np.array([])
    lo, hi = (float(values.min()), float(values.max())) if values.size else (1e-3, 1.0)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # labels at 1, 2, 5 x 10^k
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"{_label('predgap_hat')} (log)")
    ax.set_ylabel(f"{_label('predgap')} (log)")
    x, y = means["predgap_hat"].to_numpy(float), means["predgap"].to_numpy(float)
    rho = correlation(x, y, "spearman") if len(means) >= 2 else float("nan")
    note = f"\n{dropped} of {len(table)} cells <= 0 not shown (log axes)" if dropped else ""
    ax.set_title(f"{title}  Spearman rho = {rho:.2f} ({len(means)} weak models, seed means){note}".strip(), fontsize=10)
    handles = ax.get_legend_handles_labels()[0]
    _outside_legend(ax, [*handles, *_kind_key(kinds)])
    fig.tight_layout()
    return fig


def parity_plot(table: pd.DataFrame, *, title: str = "") -> Figure:
    """Predicted against measured values (columns ``predicted``, ``measured``, ``seed``),
    one colour per seed, with the line y = x and the RMSE of each seed in the legend."""
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    groups = list(table.groupby("seed", sort=True))
    for (seed, part), color in zip(groups, model_colors(len(groups))):
        rmse = float(np.sqrt(np.mean((part["predicted"] - part["measured"]) ** 2)))
        ax.scatter(
            part["measured"],
            part["predicted"],
            s=12,
            alpha=0.6,
            color=color,
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
