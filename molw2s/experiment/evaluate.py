"""Evaluation of the predictors against the measured W2S quantities (theory.md section 5):
tables, correlations with bootstrap intervals, k-rule sensitivity, the PredGap theory
check, figures, and ``report.md`` / ``report.html`` with ``results.json`` and CSVs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from molw2s.analysis.correlations import bootstrap_correlations, correlation, correlations_frame
from molw2s.analysis.document import Document
from molw2s.analysis.paired import PairedStat, paired_analysis, verdict
from molw2s.analysis.plots import LABELS, pgr_bars, predictor_scatter, save_figure, theory_check_scatter
from molw2s.experiment.cell import BASELINES
from molw2s.experiment.config import EvaluationSettings, ExperimentConfig
from molw2s.experiment.summary import interval_text, provenance
from molw2s.io import atomic_path, safe_filename, write_json_atomic, write_text_atomic

PREDICTORS = ("M", "M_F", "predgap_hat", "misfit", "err_w", *BASELINES)
MEASURED = ("err_w2s", "predgap", "pgr", "gain")
#: the same quantities under the finetuned student (``w2s.student: finetune``), when present
FINETUNED = {"ft_err_w2s": "err_w2s", "ft_predgap": "predgap", "ft_pgr": "pgr", "ft_gain": "gain"}
#: the paper's claim "holds" on a task when M's Spearman rho with Err_w2s is at least this
#: and its bootstrap interval excludes zero (documented in docs/experiment.md)
STRONG_RHO = 0.5
#: fewer weak models than this: correlations are reported, with a warning and no verdict
MIN_MODELS_FOR_VERDICT = 5
#: label-based baselines M is compared with (column -> name in the report)
LABEL_BASED = {"err_w": "Err_w", "predgap_hat": "PredGap_hat"}
#: what the error bars of the predictor scatters show (molw2s.analysis.plots.seed_centered_spread)
SPREAD_CAPTION = (
    "one std over seeds of the model's value minus that seed's mean over weak models, "
    "i.e. without the test-set difficulty all models of a seed share"
)

log = logging.getLogger(__name__)


def cells_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per (task, seed, weak model) with the scalar fields of each cell, plus
    ``err_w2s_over_sc`` (Err_w2s / Err_sc on the same test set)."""
    flat = [{k: v for k, v in r.items() if k != "sensitivity"} for r in rows]
    frame: pd.DataFrame = pd.DataFrame(flat)
    if {"err_w2s", "err_sc"} <= set(frame.columns):
        frame["err_w2s_over_sc"] = frame["err_w2s"] / frame["err_sc"]
    return frame


def sensitivity_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Long table: one row per (cell, k rule) with M, M_F, PredGap_hat, k_w, k_s and the
    cell's measured quantities."""
    out = []
    for r in rows:
        for label, values in r["sensitivity"].items():
            out.append(
                {
                    "task": r["task"],
                    "seed": r["seed"],
                    "weak": r["weak"],
                    "rule": label,
                    **values,
                    **{m: r[m] for m in MEASURED},
                }
            )
    frame: pd.DataFrame = pd.DataFrame(out)
    return frame


def model_summary(cells: pd.DataFrame) -> pd.DataFrame:
    """Per weak model: seed means of the predictors and measured quantities."""
    cols = [c for c in (*PREDICTORS, *MEASURED, "err_sc", *FINETUNED, "ft_err_sc", "k_w", "k_s") if c in cells.columns]
    summary = cells.groupby("weak", sort=False)[cols].mean().reset_index()
    summary.insert(1, "n_seeds", cells.groupby("weak", sort=False).size().to_numpy())
    ordered: pd.DataFrame = summary.sort_values("M").reset_index(drop=True)
    return ordered


def rule_sensitivity(sens: pd.DataFrame, settings: EvaluationSettings) -> pd.DataFrame:
    """Spearman rho of M (and of PredGap_hat) with Err_w2s under each k rule."""
    records = []
    for label, part in sens.groupby("rule", sort=False):
        corr = bootstrap_correlations(
            part, ["M", "predgap_hat"], ["err_w2s"], methods=["spearman"], **_bootstrap_args(settings)
        )
        rec: dict[str, Any] = {
            "rule": label,
            "mean k_w": part["k_w"].mean(),
            "mean k_s": part["k_s"].mean(),
            "M range": f"{part['M'].min():.3f}-{part['M'].max():.3f}",
        }
        for c in corr:
            rec[f"rho({c.predictor}, Err_w2s)"] = c.value
            rec[f"CI {c.predictor}"] = interval_text(c.ci_low, c.ci_high)
        records.append(rec)
    frame: pd.DataFrame = pd.DataFrame(records)
    return frame


def label_based_comparison(part: pd.DataFrame, settings: EvaluationSettings) -> dict[str, list[PairedStat]]:
    """M against each label-based baseline (Err_w, PredGap_hat) on Err_w2s: within-seed,
    partial and paired statistics (:func:`molw2s.analysis.paired.paired_analysis`)."""
    return {
        baseline: paired_analysis(
            part,
            predictor="M",
            baseline=baseline,
            measured="err_w2s",
            n_boot=settings.n_boot,
            confidence=settings.confidence,
            seed=settings.seed,
        )
        for baseline in LABEL_BASED
        if part[baseline].notna().any()
    }


def interpret(
    task: str, corr: pd.DataFrame, check_rho: float, paired: dict[str, list[PairedStat]] | None = None
) -> str:
    """A plain-language reading of one task's headline numbers against the paper's claim.

    With fewer than :data:`MIN_MODELS_FOR_VERDICT` weak models there is no verdict: a
    rank correlation over so few points cannot support or refute anything.
    """

    def pick(pred: str, meas: str) -> pd.Series:
        sel = corr[(corr.predictor == pred) & (corr.measured == meas) & (corr.method == "spearman")]
        row: pd.Series = sel.iloc[0]
        return row

    m_err, m_gap = pick("M", "err_w2s"), pick("M", "predgap")
    n_models = int(m_err.n_models)
    if n_models < MIN_MODELS_FOR_VERDICT:
        log.warning("%s: only %d weak models; no verdict (at least %d needed)", task, n_models, MIN_MODELS_FOR_VERDICT)
        claim = (
            f"no verdict: a correlation over {n_models} weak models cannot support or refute the claim "
            f"(at least {MIN_MODELS_FOR_VERDICT} are needed)"
        )
    elif m_err.value >= STRONG_RHO and m_err.ci_low > 0:
        claim = "consistent with the paper's claim (strongly positive, interval above zero)"
    else:
        claim = "not the strongly positive correlation the paper reports"
    text = (
        f"On {task}, across {n_models} weak models, M's Spearman correlation with Err_w2s is "
        f"{m_err.value:.2f} (95% CI {interval_text(m_err.ci_low, m_err.ci_high)}) and with the measured PredGap "
        f"{m_gap.value:.2f} ({interval_text(m_gap.ci_low, m_gap.ci_high)}): {claim}. "
    )
    best = corr[(corr.measured == "err_w2s") & (corr.method == "spearman")].sort_values("value", ascending=False)
    if len(best):
        top = best.iloc[0]
        text += f"The predictor that ranks Err_w2s best here is {top.predictor} (rho {top.value:.2f}). "
    for baseline, stats_ in (paired or {}).items():
        diff, part_rho = stats_[-1], stats_[2]
        text += (
            f"Against the label-based {LABEL_BASED[baseline]}: {verdict(diff, LABEL_BASED[baseline])} "
            f"(difference of rho {diff.value:.2f}, {interval_text(diff.ci_low, diff.ci_high)}; partial rho of M "
            f"given {LABEL_BASED[baseline]} {part_rho.value:.2f}, {interval_text(part_rho.ci_low, part_rho.ci_high)}). "
        )
    text += (
        f"The label-based PredGap_hat and the measured PredGap rank-agree with rho {check_rho:.2f} "
        "over all cells (the theory predicts a trend, not equality: PredGap_hat may underestimate "
        "the measured gap at finite n)."
    )
    return text


def student_comparison(corr: pd.DataFrame, part: pd.DataFrame) -> pd.DataFrame:
    """Per strong student (linear; finetuned when measured): mean Err_w2s and Err_sc, and
    M's Spearman rho with Err_w2s and with PGR, with intervals."""
    students = {"linear": ("err_w2s", "err_sc", "pgr")}
    if "ft_err_w2s" in corr.measured.to_numpy():
        students["finetuned"] = ("ft_err_w2s", "ft_err_sc", "ft_pgr")
    records = []
    for student, (err, ceiling, pgr) in students.items():
        rec: dict[str, Any] = {
            "student": student,
            "mean Err_w2s": part[err].mean(),
            "mean Err_sc": part[ceiling].mean(),
        }
        for measured, label in ((err, "Err_w2s"), (pgr, "PGR")):
            sel = corr[(corr.predictor == "M") & (corr.measured == measured) & (corr.method == "spearman")]
            if len(sel):
                row = sel.iloc[0]
                rec[f"rho(M, {label}) [CI]"] = f"{row.value:.2f} {interval_text(row.ci_low, row.ci_high)}"
        records.append(rec)
    frame: pd.DataFrame = pd.DataFrame(records)
    return frame


@dataclass(frozen=True)
class TaskEvaluation:
    """Everything evaluated for one task: what the report section shows and results.json holds."""

    task: str
    part: pd.DataFrame
    summary: pd.DataFrame
    corr: pd.DataFrame
    sensitivity: pd.DataFrame
    check_rho: float
    paired: dict[str, list[PairedStat]]
    paths: dict[str, Path]
    error_column: str
    interpretation: str

    def to_json(self, out_dir: Path) -> dict[str, Any]:
        """The task's entry of results.json."""
        return {
            "n_cells": len(self.part),
            "weak_models": self.summary.to_dict(orient="records"),
            "correlations": self.corr.to_dict(orient="records"),
            "rule_sensitivity": self.sensitivity.to_dict(orient="records"),
            "predgap_check_spearman": self.check_rho,
            "label_based_comparison": {b: [x.to_dict() for x in stats_] for b, stats_ in self.paired.items()},
            "students": student_comparison(self.corr, self.part).to_dict(orient="records"),
            "interpretation": self.interpretation,
            "figures": {k: str(v.relative_to(out_dir)) for k, v in self.paths.items()},
        }


def evaluate(rows: Sequence[dict[str, Any]], config: ExperimentConfig, out_dir: Path) -> dict[str, Any]:
    """Write tables, correlations, figures and the report for all tasks; return results.json's content."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig_dir = out_dir / "figures"
    cells, sens = cells_frame(rows), sensitivity_frame(rows)
    _write_csv(cells, out_dir / "cells.csv")
    _write_csv(sens, out_dir / "rule_sensitivity_cells.csv")
    ev = config.evaluation
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
        measured = [*MEASURED, *(c for c in FINETUNED if c in part.columns and part[c].notna().any())]
        corr = correlations_frame(
            bootstrap_correlations(
                part, [p for p in PREDICTORS if part[p].notna().any()], measured, **_bootstrap_args(ev)
            )
        )
        corr.insert(0, "task", task)
        all_corr.append(corr)
        summary = model_summary(part)
        sensitivity = rule_sensitivity(sens[sens.task == task], ev)
        check_rho = correlation(part["predgap_hat"].to_numpy(float), part["predgap"].to_numpy(float), "spearman")
        paired = label_based_comparison(part, ev)
        error_column = "err_w2s_over_sc" if ev.relative_errors else "err_w2s"
        figures = {
            "m_vs_err_w2s": predictor_scatter(part, "M", error_column, title=f"{task}:"),
            "m_vs_predgap": predictor_scatter(part, "M", "predgap", title=f"{task}:"),
            "predgap_check": theory_check_scatter(part, title=f"{task}:"),
            "pgr": pgr_bars(part, title=f"{task}:"),
        }
        paths = {
            name: save_figure(fig, fig_dir / f"{safe_filename(str(task))}_{name}")[0] for name, fig in figures.items()
        }
        te = TaskEvaluation(
            str(task),
            part,
            summary,
            corr,
            sensitivity,
            check_rho,
            paired,
            paths,
            error_column,
            interpret(str(task), corr, check_rho, paired),
        )
        _task_section(doc, te, out_dir)
        results["tasks"][task] = te.to_json(out_dir)
        _write_csv(summary, out_dir / f"{safe_filename(str(task))}_weak_models.csv")
    _write_csv(pd.concat(all_corr, ignore_index=True), out_dir / "correlations.csv")
    write_json_atomic(out_dir / "results.json", results)
    write_text_atomic(out_dir / "report.md", doc.to_markdown())
    write_text_atomic(out_dir / "report.html", doc.to_html())
    return results


def _bootstrap_args(settings: EvaluationSettings) -> dict[str, Any]:
    return {
        "n_boot": settings.n_boot,
        "confidence": settings.confidence,
        "seed": settings.seed,
        "resample": settings.resample,
    }


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


def _task_section(doc: Document, te: TaskEvaluation, out_dir: Path) -> None:
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
        str(te.paths["m_vs_err_w2s"].relative_to(out_dir)),
        f"{te.task}: M against {LABELS[te.error_column]} per weak model (seed means; bars: {SPREAD_CAPTION})",
    )
    doc.image(
        str(te.paths["m_vs_predgap"].relative_to(out_dir)),
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
        str(te.paths["predgap_check"].relative_to(out_dir)), f"{te.task}: PredGap_hat against PredGap (y = x dashed)"
    )
    doc.image(str(te.paths["pgr"].relative_to(out_dir)), f"{te.task}: PGR per weak model")
    n_neg = int((te.part["gain"] < 0).sum())
    doc.paragraph(f"{n_neg} of {len(te.part)} cells have negative Gain (the W2S model is worse than its weak teacher).")


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
