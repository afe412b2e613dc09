"""``molw2s multicap``'s report: the seed-interval summaries
(:func:`molw2s.multicap.summary.summaries`) of every experiment's per-seed records as
``results.json``, one CSV of records and one of summaries per experiment, ``report.md`` /
``report.html`` and figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from molw2s.analysis.document import Document
from molw2s.analysis.plots import save_figure
from molw2s.experiment.config import MulticapConfig
from molw2s.io import write_json_atomic, write_text_atomic
from molw2s.multicap.summary import summaries

UPPER_BOUND = "oracle (upper bound)"


def write_multicap_report(
    records: dict[str, list[dict[str, Any]]], config: MulticapConfig, out_dir: Path
) -> dict[str, Any]:
    """results.json, CSVs, report.md + report.html and figures under ``out_dir``; returns
    results.json's content."""
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    tables = summaries(records, config.confidence)
    for name, rows in records.items():
        pd.DataFrame(rows).to_csv(out_dir / f"{name}_records.csv", index=False)
    for name, table in tables.items():
        table.to_csv(out_dir / f"{name}_summary.csv", index=False)
    doc = Document(f"Multi-capability W2S: {config.name}")
    pct = round(100 * config.confidence)
    doc.paragraph(
        f"Capabilities {[t.display_name() for t in config.tasks]}; strong `{config.strong}`, weak {config.weak} "
        f"(`{config.weak[0]}` supervises every experiment but the quality one); student `{config.student.kind}`; "
        f"split `{config.splits.method}`, seeds {config.splits.seeds}. Errors: test MSE in each capability's units. "
        f"Differences are formed within a seed; brackets are {pct}% t-intervals over seeds. "
        "`oracle` knows the true weak-label errors: an upper bound, not a method."
    )
    _independence_section(doc, tables, out_dir)
    _quality_section(doc, tables)
    _bootstrap_section(doc, tables, out_dir)
    _selection_section(doc, tables, out_dir)
    write_text_atomic(out_dir / "report.md", doc.to_markdown())
    write_text_atomic(out_dir / "report.html", doc.to_html())
    payload = {
        "config": config.model_dump(mode="json"),
        "summaries": {name: t.replace({np.nan: None}).to_dict(orient="records") for name, t in tables.items()},
        "records": records,
    }
    write_json_atomic(out_dir / "results.json", payload)
    return payload


def _interval(frame: pd.DataFrame, value: str, scale: float = 1.0, fmt: str = "{:.3g}") -> pd.Series:
    def show(r: pd.Series) -> str:
        text = fmt.format(scale * r[value])
        if pd.notna(r[f"{value}_low"]):
            text += f" [{fmt.format(scale * r[f'{value}_low'])}, {fmt.format(scale * r[f'{value}_high'])}]"
        return text

    return frame.apply(show, axis=1)


def _independence_section(doc: Document, tables: dict[str, pd.DataFrame], out_dir: Path) -> None:
    if "independence" not in tables:
        return
    t = tables["independence"]
    doc.heading("1. Capability independence")
    doc.paragraph(
        "Relative change of each capability's Err_w2s (column) when the student also learns the capability of "
        "the row (`all`: every capability) instead of learning it alone, in %. Near 0: independent."
    )
    shown = t.assign(change=_interval(t, "rel_diff", 100.0, "{:+.1f}"))
    doc.table(shown.pivot(index="trained_with", columns="capability", values="change").reset_index())
    matrix = t.pivot(index="trained_with", columns="capability", values="rel_diff") * 100
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * matrix.shape[1], 1.2 + 0.6 * matrix.shape[0]))
    bound = max(float(np.nanmax(np.abs(matrix.to_numpy()))), 1e-9)
    im = ax.imshow(matrix.to_numpy(), cmap="RdBu_r", vmin=-bound, vmax=bound)
    ax.set_xticks(range(matrix.shape[1]), matrix.columns)
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    for (i, j), v in np.ndenumerate(matrix.to_numpy()):
        ax.text(j, i, "" if np.isnan(v) else f"{v:+.1f}%", ha="center", va="center", fontsize=8)
    ax.set_xlabel("capability evaluated")
    ax.set_ylabel("also trained on")
    fig.colorbar(im, ax=ax, label="change of Err_w2s (%)")
    fig.tight_layout()
    save_figure(fig, out_dir / "figures" / "independence")
    doc.image("figures/independence.png", "Independence matrix: change of Err_w2s vs learning the capability alone")


def _quality_section(doc: Document, tables: dict[str, pd.DataFrame]) -> None:
    if "quality" not in tables:
        return
    q = tables["quality"]
    doc.heading("2. Quality and diversity of weak data")
    doc.paragraph(
        "Per weak model (quality: Err_w) and D_s subset (`all`; `random` and `scaffold`-clustered subsets of the "
        "same size: diversity as distinct scaffolds and mean pairwise ECFP4 Tanimoto distance). Err_sc: the "
        "student on the same subset's gold labels."
    )
    shown = q[["capability", "weak_model", "subset", "n_seeds"]].assign(
        Err_w=_interval(q, "err_w"),
        Err_w2s=_interval(q, "err_w2s"),
        Err_sc=_interval(q, "err_sc"),
        scaffolds=q["n_scaffolds"].round(1),
        tanimoto_distance=q["tanimoto_distance"].round(3),
    )
    doc.table(shown)
    d = tables["diversity"]
    doc.paragraph("Scaffold-clustered minus random subset (same size), relative change of Err_w2s in %:")
    doc.table(d[["capability", "weak_model", "n_seeds"]].assign(change=_interval(d, "rel_diff", 100.0, "{:+.1f}")))


def _bootstrap_section(doc: Document, tables: dict[str, pd.DataFrame], out_dir: Path) -> None:
    if "bootstrapping" not in tables:
        return
    b = tables["bootstrapping"]
    doc.heading("3. Self-bootstrapping")
    doc.paragraph(
        "Round 0: the student on weak labels; round r: retrained on its own round r-1 predictions of D_s. "
        "Shrinking variance / entropy of the predictions on D_s is over-confidence and lost diversity."
    )
    doc.table(
        b[["capability", "round", "n_seeds"]].assign(
            Err_w2s=_interval(b, "err_w2s"), pred_var=_interval(b, "pred_var"), entropy=_interval(b, "pred_entropy")
        )
    )
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for cap, part in b.groupby("capability", sort=False):
        first = part.iloc[0]
        axes[0].plot(part["round"], part["err_w2s"] / first["err_w2s"], marker="o", label=str(cap))
        axes[1].plot(part["round"], part["pred_var"] / first["pred_var"], marker="o", label=str(cap))
    axes[0].set_ylabel("Err_w2s / round 0")
    axes[1].set_ylabel("variance of predictions on D_s / round 0")
    for ax in axes:
        ax.set_xlabel("round")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out_dir / "figures" / "bootstrapping")
    doc.image(
        "figures/bootstrapping.png", "Self-bootstrapping: error and prediction variance per round (mean over seeds)"
    )


def _selection_section(doc: Document, tables: dict[str, pd.DataFrame], out_dir: Path) -> None:
    if "selection" not in tables:
        return
    s, p = tables["selection"], tables["selection_pooled"]
    doc.heading("4-5. Data selection and two-stage training")
    doc.paragraph(
        "Each method ranks D_s's weak-labelled examples per capability and keeps the fraction with the smallest "
        "predicted weak-label error; `selection only` trains on it, `two-stage` trains on all weak labels then on "
        "it. Relative change of Err_w2s in %, averaged over capabilities within a seed, then over seeds; negative "
        "is better. `oracle` is an upper bound."
    )
    doc.table(p[["comparison", "fraction", "n_seeds"]].assign(change=_interval(p, "rel_diff", 100.0, "{:+.1f}")))
    doc.paragraph("Per capability, mean test MSE over seeds:")
    wide = s.pivot_table(index=["capability", "method", "training"], columns="fraction", values="err_w2s", sort=False)
    doc.table(wide.reset_index().rename(columns=str))
    save_figure(_selection_figure(s), out_dir / "figures" / "selection")
    doc.image(
        "figures/selection.png", "Err_w2s vs selection fraction per method (solid: two-stage, dashed: selection only)"
    )


def _selection_figure(s: pd.DataFrame) -> Figure:
    caps = list(dict.fromkeys(s["capability"]))
    fig, axes = plt.subplots(1, len(caps), figsize=(4.2 * len(caps), 3.6), squeeze=False)
    for ax, cap in zip(axes[0], caps, strict=True):
        part = s[s["capability"] == cap]
        everything = part[part["method"] == "none"]["err_w2s"].mean()
        ax.axhline(everything, color="black", lw=1, label="one stage, all")
        for k, method in enumerate(m for m in dict.fromkeys(part["method"]) if m != "none"):
            label = UPPER_BOUND if method == "oracle" else method
            for training, style in (("two-stage", "-"), ("selection only", "--")):
                line = part[(part["method"] == method) & (part["training"] == training)]
                ax.plot(
                    line["fraction"],
                    line["err_w2s"],
                    style,
                    marker="o",
                    color=f"C{k}",
                    label=label if training == "two-stage" else None,
                )
        ax.set_title(str(cap))
        ax.set_xlabel("selection fraction")
        ax.set_ylabel("Err_w2s (test MSE)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig
