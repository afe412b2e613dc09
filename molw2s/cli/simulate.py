"""``molw2s simulate random-features``: the random-feature W2S simulator (theory.md section 7).

Writes into the run directory: ``config.json``, ``repeats/<hash>/repeat-<r>.json`` (one
per repeat, reused by a rerun with the same settings), ``summary.json``, ``losses.csv``
and the figures ``ratio_vs_m_te.png``, ``student_vs_teacher_loss.png``,
``loss_curves.png`` and ``predictor.png``.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from molw2s.errors import ConfigError
from molw2s.progress import show_progress

if TYPE_CHECKING:
    from molw2s.theory.random_features import RandomFeaturesConfig, RepeatResult


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command group to ``app``."""
    sim_app = typer.Typer(help="Simulators of the theory (random-feature weak-to-strong).", no_args_is_help=True)
    app.add_typer(sim_app, name="simulate")

    @sim_app.command("random-features")
    def random_features(
        overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. m_student=2048 repeats=1"),
        config: Path = typer.Option(None, "--config", "-c", help="YAML config (default: the reduced setting)."),
        paper: bool = typer.Option(False, "--paper", help="Impose the paper's d=32, M_ST=16384, M_TE=16..256."),
        out: Path = typer.Option(None, "--out", help="Run directory (default: under the molw2s cache)."),
    ) -> None:
        """Teacher and student ReLU random-feature models; L_ST / L_TE across M_TE and t."""
        from molw2s.theory.random_features import RandomFeaturesConfig

        cfg = _build_config(RandomFeaturesConfig, config, paper, overrides or [])
        run_dir = out if out is not None else _default_run_dir(cfg)
        summary = run_random_features(cfg, run_dir)
        _print_summary(summary, run_dir)


def _build_config(
    model_cls: type[RandomFeaturesConfig], path: Path | None, paper: bool, overrides: list[str]
) -> RandomFeaturesConfig:
    """defaults < config file < --paper settings < key=value overrides."""
    from molw2s.config import apply_overrides, build_model, load_yaml
    from molw2s.theory.random_features import PAPER_SETTINGS

    data = load_yaml(path) if path is not None else {}
    if paper:
        data.update(PAPER_SETTINGS)
    data = apply_overrides(data, overrides)
    return build_model(model_cls, data, source=str(path) if path is not None else "config")


def _default_run_dir(cfg: RandomFeaturesConfig) -> Path:
    from molw2s.io import cache_dir, content_hash

    return cache_dir() / "simulate" / f"random_features-{content_hash(cfg.model_dump())}"


def run_random_features(cfg: RandomFeaturesConfig, run_dir: Path, *, with_predictor: bool = True) -> dict[str, Any]:
    """Run (or resume) every repeat of ``cfg`` under ``run_dir``, write the summary, the
    per-(repeat, M_TE) table and the figures; return the summary."""
    from tqdm.auto import tqdm

    from molw2s.analysis import rf_plots
    from molw2s.analysis.plots import save_figure
    from molw2s.analysis.random_features import summarize
    from molw2s.io import CachedResult, content_hash, write_json_atomic
    from molw2s.theory.random_features import RepeatResult, simulate_repeat

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} exists and is not a directory")
    # the number of repeats does not change any single repeat, so more repeats reuse the old ones
    repeat_dir = run_dir / "repeats" / content_hash(cfg.model_dump(exclude={"repeats"}), with_predictor)
    write_json_atomic(run_dir / "config.json", cfg.model_dump())
    results, started = [], time.perf_counter()
    for r in tqdm(
        range(cfg.repeats), desc=f"repeats (M_ST={cfg.m_student})", unit="repeat", disable=not show_progress(True)
    ):
        cache = CachedResult(repeat_dir / f"repeat-{r}.json")
        cached = cache.load()
        if cached is not None:
            results.append(RepeatResult.from_dict(cached))
            continue
        result = simulate_repeat(cfg, r, with_predictor=with_predictor)
        cache.store(result.to_dict())
        results.append(result)
    summary = summarize(results)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    write_json_atomic(run_dir / "summary.json", summary)
    _write_table(run_dir / "losses.csv", results)
    figures = {
        "ratio_vs_m_te": rf_plots.ratio_vs_teacher_width(summary),
        "student_vs_teacher_loss": rf_plots.student_vs_teacher_loss(results, summary),
        "loss_curves": rf_plots.loss_curves(results[0]),
    }
    if "predictor" in summary:
        figures["predictor"] = rf_plots.predictor_vs_ratio(summary)
    for name, fig in figures.items():
        save_figure(fig, run_dir / name, formats=("png",))
    return summary


def _write_table(path: Path, results: list[RepeatResult]) -> None:
    """One row per (repeat, M_TE): losses, ratios, oracle time, Monte-Carlo check, M per report time."""
    from molw2s.io import atomic_path

    first = results[0]
    header = ["repeat", "m_te", "L_TE", "L_TE_mc", "L_TE_mc_se", "best_t", "L_ST_best", "L_ST_best_mc", "ratio_best"]
    header += [f"ratio_t{t:g}" for t in first.report_times]
    if first.predictor_M:
        header += [f"M_t{t:g}" for t in first.report_times] + ["k_w"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in results:
            for i, m in enumerate(r.m_teachers):
                l_te = r.teacher_loss[i]
                row = [r.repeat, m, l_te, r.mc_teacher_loss[i], r.mc_teacher_loss_se[i], r.best_time[i]]
                row += [r.best_student_loss[i], r.mc_best_student_loss[i], r.best_student_loss[i] / l_te]
                row += [v / l_te for v in r.report_student_loss[i]]
                if r.predictor_M:
                    row += list(r.predictor_M[i]) + [r.predictor_k_w[i]]
                writer.writerow(row)


def _print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    times, m_te = summary["report_times"], summary["m_teachers"]
    losses = Table(title=f"L_ST / L_TE, mean over {summary['repeats']} repeats (best t: oracle)")
    for col in ["M_TE", "L_TE", "best t", "L_ST", "best t ratio"] + [f"t={t:g}" for t in times]:
        losses.add_column(col, justify="right")
    for i, m in enumerate(m_te):
        losses.add_row(
            str(m),
            f"{summary['teacher_loss_mean'][i]:.2e}",
            f"{summary['best_time_median'][i]:.0f}",
            f"{summary['best_student_loss_mean'][i]:.2e}",
            f"{summary['ratio_best_mean'][i]:.3f}±{summary['ratio_best_se'][i]:.3f}",
            *[f"{summary['ratio_report_mean'][j][i]:.3f}" for j in range(len(times))],
        )
    console.print(losses)
    fb = summary["finding_b"]
    console.print(
        f"(b) log-log slope of L_ST on L_TE: {fb['slope_best']:.3f} (best t); "
        + ", ".join(f"{s:.3f} (t={t:g})" for s, t in zip(fb["slope_report"], times))
    )
    pred = summary.get("predictor")
    if pred:
        table = Table(title=f"M = ||P_s (I - P_w)||_op, beta_s = 1/(2t); k_s = {pred['k_s'][0]}")
        for col in ["M_TE", "k_w"] + [f"t={t:g}" for t in times]:
            table.add_column(col, justify="right")
        for i, m in enumerate(m_te):
            table.add_row(str(m), str(pred["k_w"][i]), *[f"{pred['M_mean'][j][i]:.3f}" for j in range(len(times))])
        console.print(table)
        console.print(
            "Spearman(M, L_ST/L_TE): "
            + ", ".join(f"{rho:+.2f} (t={t:g})" for rho, t in zip(pred["spearman_M_vs_ratio"], times))
        )
    console.print(f"Monte-Carlo check: max |exact - MC| / s.e. = {summary['mc_check_max_abs_z']:.2f}")
    console.print(f"finished in {summary['seconds']} s; results and figures in {run_dir}")
