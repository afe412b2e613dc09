"""The statistics of ``molw2s run``'s evaluation (theory.md section 5): per task, the weak
models' seed means, correlations of the predictors with the measured W2S quantities with
bootstrap intervals, k-rule sensitivity, M against the label-based baselines, the PredGap
theory check and a plain-language reading. :mod:`molw2s.experiment.evaluate` writes them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from molw2s.analysis.correlations import bootstrap_correlations, correlation, correlations_frame
from molw2s.analysis.paired import PairedStat, paired_analysis, verdict
from molw2s.experiment.cell import BASELINES
from molw2s.experiment.config import EvaluationSettings
from molw2s.experiment.summary import interval_text

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


def evaluate_task(task: str, part: pd.DataFrame, sens: pd.DataFrame, settings: EvaluationSettings) -> TaskEvaluation:
    """Every statistic of one task from its cells (``part``) and its k-rule rows (``sens``)."""
    measured = [*MEASURED, *(c for c in FINETUNED if c in part.columns and part[c].notna().any())]
    corr = correlations_frame(
        bootstrap_correlations(
            part, [p for p in PREDICTORS if part[p].notna().any()], measured, **_bootstrap_args(settings)
        )
    )
    corr.insert(0, "task", task)
    check_rho = correlation(part["predgap_hat"].to_numpy(float), part["predgap"].to_numpy(float), "spearman")
    paired = label_based_comparison(part, settings)
    return TaskEvaluation(
        task,
        part,
        model_summary(part),
        corr,
        rule_sensitivity(sens, settings),
        check_rho,
        paired,
        "err_w2s_over_sc" if settings.relative_errors else "err_w2s",
        interpret(task, corr, check_rho, paired),
    )


@dataclass(frozen=True)
class TaskEvaluation:
    """Everything evaluated for one task: what the report section shows and results.json holds
    (:func:`evaluate_task`)."""

    task: str
    part: pd.DataFrame
    summary: pd.DataFrame
    corr: pd.DataFrame
    sensitivity: pd.DataFrame
    check_rho: float
    paired: dict[str, list[PairedStat]]
    error_column: str
    interpretation: str

    def to_json(self) -> dict[str, Any]:
        """The task's entry of results.json (the report adds its figures)."""
        return {
            "n_cells": len(self.part),
            "weak_models": self.summary.to_dict(orient="records"),
            "correlations": self.corr.to_dict(orient="records"),
            "rule_sensitivity": self.sensitivity.to_dict(orient="records"),
            "predgap_check_spearman": self.check_rho,
            "label_based_comparison": {b: [x.to_dict() for x in stats_] for b, stats_ in self.paired.items()},
            "students": student_comparison(self.corr, self.part).to_dict(orient="records"),
            "interpretation": self.interpretation,
        }


def _bootstrap_args(settings: EvaluationSettings) -> dict[str, Any]:
    return {
        "n_boot": settings.n_boot,
        "confidence": settings.confidence,
        "seed": settings.seed,
        "resample": settings.resample,
    }
