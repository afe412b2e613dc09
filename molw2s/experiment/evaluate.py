"""``molw2s run``'s report (theory.md section 5): the statistics of
:mod:`molw2s.experiment.run_statistics` for every task as tables, figures, ``report.md`` /
``report.html``, ``results.json`` and CSVs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from molw2s.analysis.document import Document
from molw2s.analysis.plots import burns_chart, pgr_chart, predictor_scatter, save_figure, theory_check_scatter
from molw2s.analysis.scree import scree_figure
from molw2s.experiment.config import ExperimentConfig
from molw2s.experiment.run_statistics import (
    NAMES,
    TaskEvaluation,
    cells_frame,
    evaluate_task,
    sensitivity_frame,
)
from molw2s.experiment.summary import interval_text, provenance
from molw2s.io import atomic_path, safe_filename, write_json_atomic, write_text_atomic


def evaluate(
    rows: Sequence[dict[str, Any]],
    config: ExperimentConfig,
    out_dir: Path,
    models: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Evaluate every task (:func:`~molw2s.experiment.run_statistics.evaluate_task`) and write
    tables, correlations, figures and the report; return results.json's content. ``models``
    describes the weak models (:func:`molw2s.experiment.model_info.describe_models`: kind,
    source, description); without it kinds and sources come from the names alone."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig_dir = out_dir / "figures"
    cells = cells_frame(rows, models)
    sens = sensitivity_frame(rows, cells)
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
        te = evaluate_task(str(task), part, sens[sens.task == task], config.evaluation, models)
        all_corr.append(te.corr.assign(task=task))
        spectra = [r for r in rows if r["task"] == task]
        paths = {
            name: save_figure(fig, fig_dir / f"{safe_filename(str(task))}_{name}")[0]
            for name, fig in _figures(te, spectra).items()
        }
        _task_section(doc, te, paths, out_dir)
        results["tasks"][task] = {**te.to_json(), "figures": {k: str(v.relative_to(out_dir)) for k, v in paths.items()}}
        _write_csv(te.models, out_dir / f"{safe_filename(str(task))}_weak_models.csv")
        _write_csv(te.regret, out_dir / f"{safe_filename(str(task))}_selection_regret.csv")
    _write_csv(pd.concat(all_corr, ignore_index=True), out_dir / "correlations.csv")
    write_json_atomic(out_dir / "results.json", results)
    write_text_atomic(out_dir / "report.md", doc.to_markdown())
    write_text_atomic(out_dir / "report.html", doc.to_html())
    return results


def _figures(te: TaskEvaluation, rows: Sequence[dict[str, Any]]) -> dict[str, Figure]:
    """The task's figures: the Burns-style chart, M against the error on rank axes (markers
    by kind, excluded models hollow), the PredGap check on log-log axes, PGR per model, and
    the scree plot of the first seed's representations with k marked."""
    title = f"{te.task}:"
    excluded = sorted(set(te.part["weak"]) - set(te.candidates["weak"]))
    figures = {
        "burns": burns_chart(te.part, title=title),
        "m_vs_err_w2s": predictor_scatter(te.part, "M", te.error_column, title=title, excluded=excluded),
        "predgap_check": theory_check_scatter(te.candidates, title=title),
        "pgr": pgr_chart(te.part, title=title),
    }
    spectra = _first_seed_spectra(rows)
    if spectra is not None:
        figures["scree"] = scree_figure(*spectra, title=title)
    return figures


def _first_seed_spectra(rows: Sequence[dict[str, Any]]) -> tuple[dict[str, list[float]], dict[str, float]] | None:
    """The strong and every weak representation's leading eigenvalues and chosen k in the
    first split seed (and first replicate), when the cells recorded them."""
    if not rows or "spectrum_s" not in rows[0]:
        return None
    first = min((r.get("replicate", 0), r["seed"]) for r in rows)
    picked = [r for r in rows if (r.get("replicate", 0), r["seed"]) == first]
    spectra = {
        f"strong ({picked[0]['strong']})": picked[0]["spectrum_s"],
        **{r["weak"]: r["spectrum_w"] for r in picked},
    }
    ks = {f"strong ({picked[0]['strong']})": picked[0]["k_s"], **{r["weak"]: r["k_w"] for r in picked}}
    return spectra, ks


def _setup_text(config: ExperimentConfig, cells: pd.DataFrame) -> str:
    head, ev = config.w2s.head, config.evaluation
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
        "Errors: test MSE in the cells; the tables give RMSE in the task's units "
        "(root of the seed-mean MSE +- sd over seeds). "
        f"A weak model enters the headline when it is not a controlled model and its seed-mean Err_w is at least "
        f"{1 + ev.margin:g} x Err_sc{'' if ev.exclude_not_weaker else ' (here: also when it is not)'}. "
        "Correlations are Spearman's, over one point per independent source (layer and pooling variants of a "
        "checkpoint are one source), with permutation p-values (exact up to 9 sources, Monte Carlo beyond), "
        f"{ev.confidence:.0%} Fisher-z intervals (Bonett-Wright; coverage checked by simulation), the "
        f"leave-one-source-out range, and no verdict below {ev.min_sources} sources. PGR is computed from seed-mean "
        "errors."
    )


def _tests_table(te: TaskEvaluation) -> pd.DataFrame:
    corr = te.corr[te.corr.measured == "err_w2s"]
    frame: pd.DataFrame = pd.DataFrame(
        {
            "predictor": [NAMES.get(p, p) for p in corr.predictor],
            "expected sign": ["+" if s > 0 else "-" if s < 0 else "none" for s in corr.expected_sign],
            "sources": corr.n_sources,
            "rho": corr.value,
            "CI": [interval_text(lo, hi) for lo, hi in zip(corr.ci_low, corr.ci_high, strict=True)],
            "p": [f"{p:.3g} ({'exact' if e else 'MC'})" for p, e in zip(corr.p_value, corr.p_exact, strict=True)],
            "min detectable |rho|": corr.min_detectable,
            "leave-one-out": [f"{lo:.2f} to {hi:.2f}" for lo, hi in zip(corr.loo_low, corr.loo_high, strict=True)],
            "verdict": corr.verdict,
        }
    )
    return frame


def _task_section(doc: Document, te: TaskEvaluation, paths: dict[str, Path], out_dir: Path) -> None:
    def image(name: str, caption: str) -> None:
        if name in paths:
            doc.image(str(paths[name].relative_to(out_dir)), f"{te.task}: {caption}")

    doc.heading(f"Task {te.task}")
    doc.paragraph(te.interpretation)
    doc.heading("Predictors of Err_w2s over independent sources (Spearman)", 3)
    doc.table(_tests_table(te))
    doc.paragraph(
        "Every predictor is judged with the sign theory expects (+: a larger value, a larger Err_w2s). PredGap, PGR "
        "and Gain as measured quantities, and each interval's method and undefined resamples, are in correlations.csv "
        "and results.json."
    )
    doc.heading("Weak models (RMSE in the task's units: root of the seed-mean MSE +- sd over seeds; sorted by M)", 3)
    doc.table(te.summary)
    image("burns", "test RMSE of each weak model, its W2S student and the strong ceiling (Burns et al. style)")
    image("m_vs_err_w2s", "M against Err_w2s on rank axes (seed means; hollow markers: left out of the headline)")
    image("pgr", "PGR per weak model, from seed-mean errors")
    doc.heading("Selection regret: choosing the weak supervisor", 3)
    doc.table(te.regret)
    doc.paragraph(
        "In every split seed (and replicate) each criterion picks the candidate with the smallest value; regret is "
        "the W2S student's test RMSE minus the best candidate's, in the task's units, with a t interval over units."
    )
    if te.paired:
        doc.heading("Label-free M against the label-based baselines", 3)
        doc.table(
            pd.DataFrame(
                [
                    {
                        "statistic": x.statistic,
                        "value": x.value,
                        "95% CI": interval_text(x.ci_low, x.ci_high),
                        "undefined resamples": x.n_dropped,
                    }
                    for stats_ in te.paired.values()
                    for x in stats_
                ]
            )
        )
    if te.replicates is not None:
        doc.heading("Pretraining replicates", 3)
        doc.table(te.replicates)
    if len(te.students) > 1:
        doc.heading("Linear and finetuned strong students", 3)
        doc.table(te.students)
    doc.heading("Dependence on the rule for k", 3)
    doc.table(te.sensitivity)
    image("scree", "covariance spectra (first seed) with the chosen k marked")
    doc.heading("Theory check: PredGap_hat against measured PredGap", 3)
    image("predgap_check", "PredGap_hat against PredGap per cell, log-log, coloured by weak model (y = x dashed)")


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
