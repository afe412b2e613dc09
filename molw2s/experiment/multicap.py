"""``molw2s multicap``: multi-capability weak-to-strong generalisation (theory.md section 8)
on frozen representations or with the strong encoder finetuned, over split seeds, with a
report. Finetuned students' runs are cached under ``<run_dir>/students``.

Each (seed, experiment) is one checked JSON under ``<run_dir>/cells`` named by a content
hash of its inputs (capabilities' molecules, labels, splits, representations) and settings,
so a rerun skips finished work and a killed run resumes. The report (``<run_dir>/report``):
``results.json``, one CSV of per-seed records and one of seed-interval summaries per
experiment, ``report.md`` / ``report.html`` and figures. Errors are test-set MSE in each
capability's units; every difference is formed within a seed, then summarised over seeds
(mean, t-interval: :mod:`molw2s.multicap.summary`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from molw2s.analysis.document import Document
from molw2s.analysis.plots import save_figure
from molw2s.data.prepare import load_task_spec
from molw2s.data.tasks import Task
from molw2s.encoders.embed import embed_tasks
from molw2s.encoders.spec import ModelRef
from molw2s.errors import ConfigError, DataError
from molw2s.experiment.cell import CellSplit, task_cell_splits
from molw2s.experiment.config import MulticapConfig
from molw2s.experiment.models import resolve_models
from molw2s.io import CachedResult, content_hash, write_json_atomic, write_text_atomic
from molw2s.multicap import experiments as ex
from molw2s.multicap.capability import Capability, WeakSupervision, weak_supervision
from molw2s.multicap.finetune_student import FinetuneSetup
from molw2s.multicap.summary import summarise

CELL_VERSION = "multicap-cell-v2"  # v2: P_w of the gap selection with the weak head's trace factor (on D_w)
#: student settings that only the ``finetune`` student reads
FINETUNE_FIELDS = {"finetune", "valid_frac"}
UPPER_BOUND = "oracle (upper bound)"


def run_multicap(config: MulticapConfig, *, progress: bool = False) -> dict[str, Any]:
    """Split (a too small capability fails before any embedding), embed, run the configured
    experiments on every seed (cached), write the report; return results.json's content."""
    run_dir = config.resolved_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    refs = resolve_models([config.strong, *config.weak], config).refs
    finetune = _finetune_setup(config, refs[config.strong], run_dir, progress)
    tasks = [load_task_spec(spec, data_dir=config.data_dir, strict=config.strict) for spec in config.tasks]
    splits = {t.name: _splits(t, config) for t in tasks}
    emb = config.embedding
    reps = {
        name: {
            task: values.astype(np.float64)
            for task, values in embed_tasks(
                ref,
                tasks,
                pooling=emb.pooling,
                layer=emb.layer,
                batch_size=emb.batch_size,
                precision=emb.precision,
                progress=progress,
            ).items()
        }
        for name, ref in refs.items()
    }
    records: dict[str, list[dict[str, Any]]] = {name: [] for name in config.experiments}
    # Many small dense problems (heads, PCA, students): threaded BLAS only adds synchronisation,
    # e.g. a 160 x 256 SVD takes 1.5 s instead of 5 ms with 2 threads on a busy 2-core machine.
    with threadpool_limits(limits=1, user_api="blas"):
        for k, seed in enumerate(config.splits.seeds):
            caps = {
                weak: [
                    _capability(t, reps[weak][t.name], reps[config.strong][t.name], splits[t.name][k]) for t in tasks
                ]
                for weak in config.weak
            }
            for experiment in config.experiments:
                cell = _cell(experiment, seed, caps, config, run_dir, finetune)
                records[experiment] += [{"seed": seed, **r} for r in cell["records"]]
    return write_multicap_report(records, config, run_dir / "report")


def _finetune_setup(config: MulticapConfig, strong: ModelRef, run_dir: Path, progress: bool) -> FinetuneSetup | None:
    """The checkpoint and cache of a ``finetune`` student (None for the frozen students)."""
    if config.student.kind != "finetune":
        return None
    return FinetuneSetup(strong.checkpoint("student.kind=finetune"), run_dir / "students", progress)


def _splits(task: Task, config: MulticapConfig) -> list[CellSplit]:
    """The task's split per seed, checked against the minimum sizes (errors name the task)."""
    label = f"capability {task.name} ({len(task.smiles)} molecules)"
    try:
        return task_cell_splits(task, config, config.data_dir, label=label)
    except ConfigError as exc:
        raise DataError(f"{label} is too small for the split: {exc}") from None


def _capability(task: Task, H_w: np.ndarray, H_s: np.ndarray, split: CellSplit) -> Capability:
    return Capability(task.name, H_w, H_s, task.y, split.weak, split.strong, split.test, list(task.smiles))


def _digest(caps: dict[str, list[Capability]]) -> str:
    """sha256 over every capability's molecules, labels, splits and representations."""
    h = hashlib.sha256()
    for weak, group in caps.items():
        h.update(weak.encode())
        for cap in group:
            h.update("\n".join([cap.name, *(cap.smiles or [])]).encode())
            for array in (cap.y, cap.weak, cap.strong, cap.test, cap.H_w, cap.H_s):
                h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _cell(
    experiment: str,
    seed: int,
    caps: dict[str, list[Capability]],
    config: MulticapConfig,
    run_dir: Path,
    finetune: FinetuneSetup | None,
) -> dict[str, Any]:
    """One experiment on one seed, read back when done before."""
    settings = config.model_dump(
        mode="json",
        include={
            "weak",
            "strong",
            "weak_head",
            "strong_head",
            "student",
            "selection",
            "bootstrap",
            "diversity",
            "predictor",
        },
    )
    if config.student.kind != "finetune":  # the finetuning settings key a cell only when that student runs
        settings["student"] = {k: v for k, v in settings["student"].items() if k not in FINETUNE_FIELDS}
    key = content_hash(CELL_VERSION, experiment, seed, _digest(caps), settings)
    cache = CachedResult(run_dir / "cells" / f"{experiment}.seed{seed}.{key}.json", key)
    cached = cache.load()
    if cached is not None:
        return cached
    main = caps[config.weak[0]]
    folds = config.selection.reward.folds

    def supervise(group: list[Capability]) -> dict[str, WeakSupervision]:
        return {c.name: weak_supervision(c, config.weak_head, folds=folds, seed=seed) for c in group}

    if experiment == "independence":
        records = ex.independence(main, supervise(main), config.student, finetune)
    elif experiment == "quality":
        by_weak = {weak: supervise(group) for weak, group in caps.items()}
        records = []
        for i, cap in enumerate(main):
            sups = {weak: by_weak[weak][cap.name] for weak in caps}
            records += ex.quality_and_diversity(
                cap, sups, config.student, config.diversity.fraction, seed + i, finetune
            )
    elif experiment == "bootstrapping":
        records = ex.bootstrapping(main, supervise(main), config.student, config.bootstrap, finetune)
    else:
        records = ex.selection(
            main,
            supervise(main),
            config.student,
            config.selection,
            weak_head=config.weak_head,
            strong_head=config.strong_head,
            predictor=config.predictor,
            seed=seed,
            finetune=finetune,
        )
    return cache.store({"cell": key, "experiment": experiment, "seed": seed, "records": records})


def summaries(records: dict[str, list[dict[str, Any]]], confidence: float) -> dict[str, pd.DataFrame]:
    """Seed-interval summaries of every experiment's errors and within-seed differences."""
    out: dict[str, pd.DataFrame] = {}
    frames = {name: pd.DataFrame(rows) for name, rows in records.items() if rows}
    if "independence" in frames:
        diff = ex.differences(frames["independence"], ["seed", "capability"], "trained_with", "alone")
        out["independence"] = _both(diff, ["trained_with", "capability"], confidence)
    if "quality" in frames:
        q = frames["quality"]
        out["quality"] = _errors(
            q,
            ["capability", "weak_model", "subset"],
            ["err_w", "err_w2s", "err_sc", "pgr", "n_scaffolds", "tanimoto_distance"],
            confidence,
        )
        diff = ex.differences(q, ["seed", "capability", "weak_model"], "subset", "random")
        out["diversity"] = _both(diff[diff["subset"] == "scaffold"], ["capability", "weak_model"], confidence)
    if "bootstrapping" in frames:
        b = frames["bootstrapping"]
        out["bootstrapping"] = _errors(b, ["capability", "round"], ["err_w2s", "pred_var", "pred_entropy"], confidence)
    if "selection" in frames:
        s = frames["selection"]
        out["selection"] = _errors(
            s, ["capability", "method", "fraction", "training"], ["err_w2s", "selected_error"], confidence
        )
        diff = ex.selection_differences(s)
        pooled = pd.DataFrame(
            diff.groupby(["seed", "comparison", "fraction"], sort=False, as_index=False)["rel_diff"].mean()
        )
        out["selection_differences"] = _both(diff, ["capability", "comparison", "fraction"], confidence)
        out["selection_pooled"] = _errors(pooled, ["comparison", "fraction"], ["rel_diff"], confidence)
    return out


def _errors(frame: pd.DataFrame, by: list[str], values: list[str], confidence: float) -> pd.DataFrame:
    """Mean and interval over seeds of each of ``values`` (columns ``<value>``, ``<value>_low``, ``<value>_high``)."""
    table: pd.DataFrame | None = None
    for value in values:
        part = summarise(frame, by, value, confidence).rename(
            columns={"mean": value, "ci_low": f"{value}_low", "ci_high": f"{value}_high"}
        )
        table = part if table is None else table.merge(part.drop(columns="n_seeds"), on=by)
    assert table is not None
    return table


def _both(diff: pd.DataFrame, by: list[str], confidence: float) -> pd.DataFrame:
    """Mean and interval over seeds of ``diff`` and ``rel_diff``."""
    return _errors(diff, by, ["diff", "rel_diff"], confidence)


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
