"""``molw2s run``'s report (theory.md section 5): the statistics of
:mod:`molw2s.experiment.run_statistics` for every task as tables, figures, ``report.md`` /
``report.html``, ``results.json`` and CSVs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from molw2s.analysis.document import Document
from molw2s.analysis.plots import LABELS, pgr_chart, predictor_scatter, save_figure, theory_check_scatter
from molw2s.experiment.config import ExperimentConfig
from molw2s.experiment.run_statistics import (
    TaskEvaluation,
    cells_frame,
    evaluate_task,
    sensitivity_frame,
    student_comparison,
)
from molw2s.experiment.summary import interval_text, provenance
from molw2s.io import atomic_path, safe_filename, write_json_atomic, write_text_atomic

SPREAD_CAPTION = (
    "one std over seeds of the model's value minus that seed's mean over weak models, "
    "i.e. without the test-set difficulty all models of a seed share"
)


def evaluate(rows: Sequence[dict[str, Any]], config: ExperimentConfig, out_dir: Path) -> dict[str, Any]:
    """Evaluate every task (:func:`~molw2s.experiment.run_statistics.evaluate_task`) and write
    tables, correlations, figures and the report; return results.json's content."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig_dir = out_dir / "figures"
    cells, sens = cells_frame(rows), sensitivity_frame(rows)
    _write_csv(cells, out_dir / "cells.csv")
    _write_csv(sens, out_dir / "rule_sensitivity_cells.csv")
    doc = Document(f"molw2s report: {config.name}")
    doc.paragraph(_setup_text(config, cells))
    results: dict[str, Any] = {
        "name": config.name,
        "provenance": provenance(),
        "config": config.model_dump(mode="json"),
        "tasks": {},
    }
    all_corr = []
    for task, part in cells.groupby("task", sort=False):
        te = evaluate_task(str(task), part, sens[sens.task == task], config.evaluation)
        all_corr.append(te.corr)
        figures = {
            "m_vs_err_w2s": predictor_scatter(part, "M", te.error_column, title=f"{task}:"),
            "m_vs_predgap": predictor_scatter(part, "M", "predgap", title=f"{task}:"),
            "predgap_check": theory_check_scatter(part, title=f"{task}:"),
            "pgr": pgr_chart(part, title=f"{task}:"),
        }
        paths = {
            name: save_figure(fig, fig_dir / f"{safe_filename(str(task))}_{name}")[0] for name, fig in figures.items()
        }
        _task_section(doc, te, paths, out_dir)
        results["tasks"][task] = {**te.to_json(), "figures": {k: str(v.relative_to(out_dir)) for k, v in paths.items()}}
        _write_csv(te.summary, out_dir / f"{safe_filename(str(task))}_weak_models.csv")
    _write_csv(pd.concat(all_corr, ignore_index=True), out_dir / "correlations.csv")
    write_json_atomic(out_dir / "results.json", results)
    write_text_atomic(out_dir / "report.md", doc.to_markdown())
    write_text_atomic(out_dir / "report.html", doc.to_html())
    return results


def _setup_text(config: ExperimentConfig, cells: pd.DataFrame) -> str:
    head = config.w2s.head
    weak = list(dict.fromkeys(cells["weak"])) if len(cells) else list(config.weak)
    return (
        f"Strong model: {config.strong}. Weak models ({len(weak)}): {', '.join(weak)}. "
        f"Tasks: {', '.join(t.display_name() for t in config.tasks)}. "
        f"Splits: {config.splits.method}, seeds {config.splits.seeds}. "
        f"D_w = {config.splits.n_weak}, D_s = {config.splits.n_strong} of the training part. "
        f"Heads: {head.solver}, beta = {head.beta:g}, scale = {head.scale}. "
        + (
            "Strong students: the linear heads and the strong encoder finetuned end to end (w2s.finetune). "
            if config.w2s.student == "finetune"
            else ""
        )
        + f"Headline k rule: {cells['rule_label'].iloc[0] if len(cells) else '-'}. "
        f"Errors are test MSE in the task's units; correlations are across weak models of their "
        f"seed means, with {config.evaluation.confidence:.0%} percentile bootstrap intervals "
        f"({config.evaluation.n_boot} resamples; resampling unit: {config.evaluation.resample.replace('_', ' ')})."
    )


def _task_section(doc: Document, te: TaskEvaluation, paths: dict[str, Path], out_dir: Path) -> None:
    doc.heading(f"Task {te.task}")
    doc.paragraph(te.interpretation)
    doc.heading("Weak models (means over seeds, sorted by M)", 3)
    doc.table(te.summary)
    doc.heading("Correlations of predictors with measured quantities (Spearman, CI)", 3)
    sp = te.corr[te.corr.method == "spearman"].copy()
    sp["rho [CI]"] = [f"{v:.2f} {interval_text(lo, hi)}" for v, lo, hi in zip(sp.value, sp.ci_low, sp.ci_high)]
    doc.table(sp.pivot(index="predictor", columns="measured", values="rho [CI]").reset_index())
    doc.paragraph("Kendall and Pearson correlations with their intervals are in correlations.csv and results.json.")
    doc.heading("Label-free M against the label-based baselines", 3)
    doc.table(
        pd.DataFrame(
            [
                {"statistic": x.statistic, "value": x.value, "95% CI": interval_text(x.ci_low, x.ci_high)}
                for stats_ in te.paired.values()
                for x in stats_
            ]
        )
    )
    doc.paragraph(
        "Within-seed rho: Spearman across weak models inside each seed (all share its test set), averaged over "
        "seeds. Partial rho and rank R^2 gain: does M explain Err_w2s beyond the baseline? The difference of rho "
        "decides the verdict: M beats (interval above 0), trails (below 0) or cannot be told apart from a baseline."
    )
    doc.image(
        str(paths["m_vs_err_w2s"].relative_to(out_dir)),
        f"{te.task}: M against {LABELS[te.error_column]} per weak model (seed means; bars: {SPREAD_CAPTION})",
    )
    doc.image(
        str(paths["m_vs_predgap"].relative_to(out_dir)),
        f"{te.task}: M against measured PredGap (seed means; bars: {SPREAD_CAPTION})",
    )
    students = student_comparison(te.corr, te.part)
    if len(students) > 1:
        doc.heading("Linear and finetuned strong students", 3)
        doc.table(students)
        doc.paragraph(
            "The same weak teachers, D_s and test sets; the linear student is a head on the frozen strong "
            "representation, the finetuned one the strong encoder trained end to end on the weak labels "
            "(its ceiling: trained on the gold labels of D_s). M is computed from the frozen representations."
        )
    doc.heading("Dependence on the rule for k", 3)
    doc.table(te.sensitivity)
    doc.heading("Theory check: PredGap_hat against measured PredGap", 3)
    doc.image(
        str(paths["predgap_check"].relative_to(out_dir)), f"{te.task}: PredGap_hat against PredGap (y = x dashed)"
    )
    doc.image(str(paths["pgr"].relative_to(out_dir)), f"{te.task}: PGR per weak model")
    n_neg = int((te.part["gain"] < 0).sum())
    doc.paragraph(f"{n_neg} of {len(te.part)} cells have negative Gain (the W2S model is worse than its weak teacher).")


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
