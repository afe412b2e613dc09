"""The statistics of ``molw2s run``'s evaluation (theory.md section 5; docs/experiment.md):
per task, the regime check, the weak models' table, the headline tests over independent
sources (:mod:`molw2s.experiment.evidence`), the controlled models as a separate validation,
pretraining replicates, k-rule sensitivity, M against the label-based baselines, selection
regret, the PredGap theory check and a plain-language reading in which every word follows a
number. :mod:`molw2s.experiment.evaluate` writes them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from molw2s.analysis.correlations import correlation
from molw2s.analysis.paired import PairedStat, paired_analysis, paired_sentence
from molw2s.experiment.cell import BASELINES
from molw2s.experiment.config import EvaluationSettings
from molw2s.experiment.evidence import (
    CONTROLLED,
    CorrelationTest,
    correlation_tests,
    source_cells,
    source_points,
    tests_frame,
)
from molw2s.experiment.model_info import describe_names
from molw2s.experiment.regime import TaskRegime, model_regime, task_regime
from molw2s.experiment.selection import selection_regret
from molw2s.experiment.summary import interval_text
from molw2s.w2s.metrics import pgr_of_means

PREDICTORS = ("M", "M_F", "predgap_hat", "misfit", "err_w", *BASELINES)
MEASURED = ("err_w2s", "predgap", "pgr", "gain")
#: the same quantities under the finetuned student (``w2s.student: finetune``), when present
FINETUNED = {"ft_err_w2s": "err_w2s", "ft_predgap": "predgap", "ft_pgr": "pgr", "ft_gain": "gain"}
#: label-based baselines M is compared with (column -> name in the report)
LABEL_BASED = {"err_w": "Err_w", "predgap_hat": "PredGap_hat"}
#: names of the predictors in sentences
NAMES = {"M": "M", "M_F": "M_F", "predgap_hat": "PredGap_hat", "misfit": "Misfit", "err_w": "Err_w", "cka": "CKA"}
log = logging.getLogger(__name__)


def cells_frame(rows: Sequence[dict[str, Any]], models: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (task, seed, weak model) with the scalar fields of each cell, plus
    ``err_w2s_over_sc`` (Err_w2s / Err_sc on the same test set) and each weak model's
    ``kind`` and ``source`` from ``models`` (:func:`molw2s.experiment.model_info.describe_names`
    when not given)."""
    flat = [{k: v for k, v in r.items() if k not in ("sensitivity",) and not isinstance(v, list)} for r in rows]
    frame: pd.DataFrame = pd.DataFrame(flat)
    if {"err_w2s", "err_sc"} <= set(frame.columns):
        frame["err_w2s_over_sc"] = frame["err_w2s"] / frame["err_sc"]
    if len(frame) and not {"kind", "source"} <= set(frame.columns):
        info = models if models is not None else describe_names(list(dict.fromkeys(frame["weak"])))
        lookup = info.set_index("weak")[["kind", "source"]]
        frame = frame.join(lookup, on="weak")
    return frame


def sensitivity_frame(rows: Sequence[dict[str, Any]], cells: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (cell, k rule) with M, M_F, PredGap_hat, k_w, k_s, the cell's
    measured quantities and its weak model's kind and source."""
    out = []
    for r, (_, cell) in zip(rows, cells.iterrows(), strict=True):
        for label, values in r["sensitivity"].items():
            keys = {k: cell[k] for k in ("task", "seed", "weak", "kind", "source", "replicate") if k in cell}
            out.append({**keys, "rule": label, **values, **{m: r[m] for m in ("err_w", "err_w2s", "err_sc")}})
    frame: pd.DataFrame = pd.DataFrame(out)
    return frame


def model_means(cells: pd.DataFrame, margin: float, models: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per weak model, sorted by M (results.json and ``<task>_weak_models.csv``): kind,
    source and description, :func:`molw2s.experiment.regime.model_regime` (seed-mean test
    MSEs and their roots, PGR of the means, Err_w / Err_sc, ``weaker``, the Gain > 0
    cells), and the seed means of the predictors and of k_w / k_s."""
    grouped = cells.groupby("weak", sort=False)
    means = grouped[[c for c in (*PREDICTORS, "k_w", "k_s") if c in cells.columns and c != "err_w"]].mean()
    info = grouped[["kind", "source"]].first()
    if models is not None and "description" in models.columns:
        info = info.join(models.set_index("weak")[["description"]])
    merged = info.join(means).reset_index().merge(model_regime(cells, margin), on="weak").sort_values("M")
    ordered: pd.DataFrame = merged.reset_index(drop=True)
    return ordered


def model_table(cells: pd.DataFrame, numbers: pd.DataFrame) -> pd.DataFrame:
    """The report's weak-model table from :func:`model_means`' ``numbers``: what each model
    is, its test RMSE in the task's units (the root of the seed-mean MSE +- the sd of the
    per-seed RMSEs) and PGR of the seed-mean errors (+- the sd of the per-seed PGRs), each
    rounded to what that sd supports, Gain > 0 cells, whether it is weaker than the
    ceiling, and its mean M and k_w."""
    per_seed = cells.groupby("weak", sort=False)
    records = []
    for row in numbers.to_dict(orient="records"):
        g = per_seed.get_group(row["weak"])
        rec: dict[str, Any] = {key: row[key] for key in ("weak", "kind", "source", "description") if key in row}
        for col, label in (("w", "RMSE_w"), ("w2s", "RMSE_w2s"), ("sc", "RMSE_sc")):
            rec[label] = round_to_uncertainty(row[f"rmse_{col}"], _sd(np.sqrt(g[f"err_{col}"])))
        rec["PGR"] = round_to_uncertainty(row["pgr"], _sd(pgr_of_means(g["err_w"], g["err_w2s"], g["err_sc"])))
        rec["Gain>0"] = f"{row['cells_gain_positive']}/{row['n_cells']}"
        rec["weaker than ceiling"] = "yes" if row["weaker"] else "NO"
        rec["M"], rec["k_w"] = row["M"], row["k_w"]
        records.append(rec)
    frame: pd.DataFrame = pd.DataFrame(records)
    return frame


def _sd(values: Any) -> float:
    """The sd over seeds of the finite ``values`` (0 with fewer than two): for rounding only."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(finite.std(ddof=1)) if len(finite) > 1 else 0.0


def round_to_uncertainty(value: float, sd: float) -> str:
    """``value +- sd`` with sd to one significant digit (two when it starts with 1) and the
    value to the same decimal place; just 3 significant digits when sd is 0 or undefined."""
    if not np.isfinite(value):
        return "n/a"
    if not (np.isfinite(sd) and sd > 0):
        return f"{value:.3g}"
    exponent = int(np.floor(np.log10(sd)))
    digits = 2 if round(sd / 10**exponent) < 2 else 1
    decimals = max(0, -(exponent - digits + 1))
    shown = f"{value:.{decimals}f}"
    if float(shown) == 0:
        shown = shown.lstrip("-")  # "-0" is 0 at this precision
    return f"{shown} +- {sd:.{decimals}f}"


def candidates_of(cells: pd.DataFrame, regime: pd.DataFrame, settings: EvaluationSettings) -> pd.DataFrame:
    """The cells that may enter the headline: not controlled, and (with
    ``exclude_not_weaker``) of weak models weaker than the ceiling by the margin."""
    keep = cells["source"] != CONTROLLED
    if settings.exclude_not_weaker:
        weaker = set(regime.loc[regime["weaker"], "weak"])
        keep &= cells["weak"].isin(weaker)
    picked: pd.DataFrame = cells[keep]
    return picked


def _unit_cols(cells: pd.DataFrame) -> list[str]:
    """The keys of a selection unit / source cell: split seed, and replicate when several."""
    return ["seed", "replicate"] if "replicate" in cells.columns and cells["replicate"].nunique() > 1 else ["seed"]


def rule_sensitivity(sens: pd.DataFrame, settings: EvaluationSettings) -> pd.DataFrame:
    """Per k rule, over the headline's sources: mean k_w and k_s, M's range, and Spearman
    rho of M and of PredGap_hat with Err_w2s with their permutation p-values."""
    records = []
    for label, part in sens.groupby("rule", sort=False):
        points = source_points(source_cells(part, _unit_cols(part)))
        tests = correlation_tests(
            points, ["M", "predgap_hat"], ["err_w2s"], confidence=settings.confidence, min_sources=settings.min_sources
        )
        rec: dict[str, Any] = {
            "rule": label,
            "mean k_w": part["k_w"].mean(),
            "mean k_s": part["k_s"].mean(),
            "M range": f"{part['M'].min():.3f}-{part['M'].max():.3f}",
        }
        for t in tests:
            rec[f"rho({NAMES[t.predictor]}, Err_w2s)"] = t.value
            rec[f"p {NAMES[t.predictor]}"] = t.p_value
        records.append(rec)
    frame: pd.DataFrame = pd.DataFrame(records)
    return frame


def label_based_comparison(cells: pd.DataFrame, settings: EvaluationSettings) -> dict[str, list[PairedStat]]:
    """M against each label-based baseline (Err_w, PredGap_hat) on Err_w2s, over sources:
    within-seed, partial and paired statistics (:func:`molw2s.analysis.paired.paired_analysis`)."""
    return {
        baseline: paired_analysis(
            cells,
            predictor="M",
            baseline=baseline,
            measured="err_w2s",
            model_col="source",
            n_boot=settings.n_boot,
            confidence=settings.confidence,
            seed=settings.seed,
        )
        for baseline in LABEL_BASED
        if cells[baseline].notna().any()
    }


def replicate_tests(candidates: pd.DataFrame, settings: EvaluationSettings) -> pd.DataFrame | None:
    """With several pretraining replicates: the headline test within each replicate (one
    row per replicate), so the report can say how much the conclusion moves between them."""
    if "replicate" not in candidates.columns or candidates["replicate"].nunique() < 2:
        return None
    records = []
    for replicate, part in candidates.groupby("replicate", sort=True):
        (test,) = correlation_tests(
            source_points(source_cells(part)),
            ["M"],
            ["err_w2s"],
            confidence=settings.confidence,
            min_sources=settings.min_sources,
        )
        records.append({"replicate": replicate, **_test_record(test)})
    frame: pd.DataFrame = pd.DataFrame(records)
    return frame


def _test_record(t: CorrelationTest) -> dict[str, Any]:
    return {
        "sources": t.n_sources,
        "rho": t.value,
        "CI": interval_text(t.ci_low, t.ci_high),
        "p": t.p_value,
        "verdict": t.verdict,
    }


def controlled_validation(cells: pd.DataFrame, settings: EvaluationSettings) -> CorrelationTest | None:
    """rho(M, Err_w2s) over the controlled weak models alone (each its own point): they are
    built from the strong representation, so this validates the predictor where the ordering
    is known; it is never pooled into the headline."""
    ctrl = cells[cells["source"] == CONTROLLED]
    if ctrl["weak"].nunique() < 3:
        return None
    points = source_points(source_cells(ctrl.assign(source=ctrl["weak"])))
    (test,) = correlation_tests(
        points, ["M"], ["err_w2s"], confidence=settings.confidence, min_sources=settings.min_sources
    )
    return test


def interpret(
    task: str,
    regime: TaskRegime,
    tests: Sequence[CorrelationTest],
    *,
    n_models: int,
    check_rho: float,
    paired: dict[str, list[PairedStat]],
    controlled: CorrelationTest | None,
    replicates: pd.DataFrame | None,
) -> str:
    """A plain-language reading of one task: the regime, the headline test and its verdict,
    the predictors judged with their expected signs, the label-based comparison, the
    controlled validation and the replicates; every word is chosen by a number printed next to it."""
    text = regime.sentence(task) + " "
    head = next((t for t in tests if (t.predictor, t.measured) == ("M", "err_w2s")), None)
    if head is not None:
        verdict = head.verdict if regime.status != "none" else "no verdict: not a W2S regime"
        text += (
            f"Across {head.n_sources} independent sources ({n_models} weak models; controlled models"
            f"{' and models not weaker than the ceiling' if regime.not_weaker else ''} left out), M's Spearman "
            f"correlation with Err_w2s is {head.value:.2f} ({interval_text(head.ci_low, head.ci_high)}, "
            f"{head.interval}), permutation p = {head.p_value:.3g} ({'exact' if head.p_exact else 'Monte Carlo'}); "
            f"{_detectable(head)}, and leaving one source out gives {head.loo_low:.2f} to {head.loo_high:.2f}. "
            f"Verdict: {verdict}. "
        )
    text += _expected_sign_sentence(tests) + " "
    for baseline, stats_ in paired.items():
        text += paired_sentence(stats_, LABEL_BASED[baseline]) + " "
    if controlled is not None:
        text += (
            f"Validation on the {controlled.n_sources} controlled models (built from the strong representation, "
            f"not independent evidence): rho(M, Err_w2s) = {controlled.value:.2f} "
            f"({interval_text(controlled.ci_low, controlled.ci_high)}, p = {controlled.p_value:.3g}). "
        )
    if replicates is not None:
        rhos = replicates["rho"].to_numpy(float)
        same = replicates["verdict"].nunique() == 1
        spread = (
            f"ranges from {np.nanmin(rhos):.2f} to {np.nanmax(rhos):.2f}"
            if np.isfinite(rhos).any()
            else "is undefined in every replicate"
        )
        text += (
            f"Across {len(replicates)} pretraining replicates rho(M, Err_w2s) {spread}; the verdict is "
            f"{'the same' if same else 'NOT the same'} in every replicate. "
        )
    text += (
        f"The label-based PredGap_hat and the measured PredGap rank-agree with rho {check_rho:.2f} over the "
        "headline cells (the theory predicts a trend, not equality)."
    )
    return text


def _detectable(test: CorrelationTest) -> str:
    if np.isfinite(test.min_detectable):
        return f"at {test.n_sources} sources only |rho| >= {test.min_detectable:.2f} can reach p <= 0.05"
    return f"at {test.n_sources} sources no rho can reach p <= 0.05"


def _expected_sign_sentence(tests: Sequence[CorrelationTest]) -> str:
    """Which predictor ranks Err_w2s best in the direction theory expects, and any that is
    significant with the wrong sign."""
    signed = [t for t in tests if t.measured == "err_w2s" and t.expected_sign != 0 and np.isfinite(t.value)]
    if not signed:
        return ""
    best = max(signed, key=lambda t: t.expected_sign * t.value)
    name = NAMES.get(best.predictor, best.predictor)
    text = (
        f"Judged with its expected sign, the predictor that ranks Err_w2s best is {name} "
        f"(rho {best.value:.2f}, expected {'+' if best.expected_sign > 0 else '-'}, p = {best.p_value:.3g})."
    )
    wrong = [t for t in signed if t.verdict.startswith("contradicts")]
    if wrong:
        text += (
            " Significant with the wrong sign: "
            + ", ".join(f"{NAMES.get(t.predictor, t.predictor)} (rho {t.value:.2f})" for t in wrong)
            + "."
        )
    return text


def student_comparison(part: pd.DataFrame, points: pd.DataFrame, settings: EvaluationSettings) -> pd.DataFrame:
    """Per strong student (linear; finetuned when the task's cells measured it): mean
    Err_w2s and Err_sc over the cells ``part`` (the headline's), and M's Spearman rho with
    Err_w2s over the headline sources ``points``, with intervals and p-values."""
    students = {"linear": ("err_w2s", "err_sc")}
    if "ft_err_w2s" in part.columns:
        students["finetuned"] = ("ft_err_w2s", "ft_err_sc")
    records = []
    for student, (err, ceiling) in students.items():
        (test,) = correlation_tests(
            points, ["M"], [err], confidence=settings.confidence, min_sources=settings.min_sources
        )
        records.append(
            {
                "student": student,
                "mean Err_w2s": part[err].mean(),
                "mean Err_sc": part[ceiling].mean(),
                "rho(M, Err_w2s) [CI]": f"{test.value:.2f} {interval_text(test.ci_low, test.ci_high)}",
                "p": test.p_value,
            }
        )
    frame: pd.DataFrame = pd.DataFrame(records)
    return frame


def evaluate_task(
    task: str,
    part: pd.DataFrame,
    sens: pd.DataFrame,
    settings: EvaluationSettings,
    models: pd.DataFrame | None = None,
) -> TaskEvaluation:
    """Every statistic of one task from its cells (``part``) and its k-rule rows (``sens``)."""
    non_controlled = part[part["source"] != CONTROLLED]
    numbers = model_means(part, settings.margin, models)
    regime_models = numbers[numbers["source"] != CONTROLLED]
    candidates = candidates_of(part, regime_models, settings)
    regime = task_regime(non_controlled, regime_models, settings.margin)
    units = _unit_cols(part)
    cells_by_source = source_cells(candidates, units)
    points = source_points(cells_by_source)
    measured = [*MEASURED, *(c for c in FINETUNED if c in part.columns and part[c].notna().any())]
    predictors = [p for p in PREDICTORS if p in part.columns and part[p].notna().any()]
    tests = correlation_tests(
        points,
        predictors,
        measured,
        confidence=settings.confidence,
        min_sources=settings.min_sources,
        seed=settings.seed,
    )
    check_rho = (
        correlation(candidates["predgap_hat"].to_numpy(float), candidates["predgap"].to_numpy(float), "spearman")
        if len(candidates) >= 2
        else float("nan")
    )
    paired = label_based_comparison(cells_by_source, settings) if len(points) >= 4 else {}
    controlled = controlled_validation(part, settings)
    replicates = replicate_tests(candidates, settings)
    headline_sens = sens[sens["weak"].isin(set(candidates["weak"]))]
    return TaskEvaluation(
        task=task,
        part=part,
        candidates=candidates,
        summary=model_table(part, numbers),
        models=numbers,
        regime=regime,
        points=points,
        corr=tests_frame(tests),
        controlled=controlled,
        replicates=replicates,
        sensitivity=rule_sensitivity(headline_sens, settings) if len(headline_sens) else pd.DataFrame(),
        check_rho=check_rho,
        paired=paired,
        regret=selection_regret(candidates, unit_cols=units, confidence=settings.confidence),
        students=student_comparison(candidates, points, settings),
        error_column="err_w2s_over_sc" if settings.relative_errors else "err_w2s",
        interpretation=interpret(
            task,
            regime,
            tests,
            n_models=candidates["weak"].nunique(),
            check_rho=check_rho,
            paired=paired,
            controlled=controlled,
            replicates=replicates,
        ),
    )


@dataclass(frozen=True)
class TaskEvaluation:
    """Everything evaluated for one task: what the report section shows and results.json holds
    (:func:`evaluate_task`)."""

    task: str
    part: pd.DataFrame
    candidates: pd.DataFrame
    summary: pd.DataFrame
    """The report's weak-model table (formatted); :attr:`models` holds its numbers."""
    models: pd.DataFrame
    regime: TaskRegime
    points: pd.DataFrame
    corr: pd.DataFrame
    controlled: CorrelationTest | None
    replicates: pd.DataFrame | None
    sensitivity: pd.DataFrame
    check_rho: float
    paired: dict[str, list[PairedStat]]
    regret: pd.DataFrame
    students: pd.DataFrame
    error_column: str
    interpretation: str

    def to_json(self) -> dict[str, Any]:
        """The task's entry of results.json (the report adds its figures)."""
        return {
            "n_cells": len(self.part),
            "regime": self.regime.to_dict(),
            "weak_models": self.models.to_dict(orient="records"),
            "sources": self.points.to_dict(orient="records"),
            "correlations": self.corr.to_dict(orient="records"),
            "controlled_validation": None if self.controlled is None else self.controlled.to_dict(),
            "replicates": None if self.replicates is None else self.replicates.to_dict(orient="records"),
            "rule_sensitivity": self.sensitivity.to_dict(orient="records"),
            "predgap_check_spearman": self.check_rho,
            "label_based_comparison": {b: [x.to_dict() for x in stats_] for b, stats_ in self.paired.items()},
            "selection_regret": self.regret.to_dict(orient="records"),
            "students": self.students.to_dict(orient="records"),
            "interpretation": self.interpretation,
        }
