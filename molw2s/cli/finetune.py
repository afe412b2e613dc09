"""``molw2s finetune CONFIG``: finetune a checkpoint on tasks, beside frozen-feature baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from molw2s.cli.run_options import DATA_DIR, PROGRESS, RUN_DIR, TRACKING, with_paths


def register(app: typer.Typer) -> None:
    """Add the ``finetune`` command to ``app``."""
    app.command("finetune")(finetune)


def finetune(
    config: Path = typer.Argument(..., help="Finetuning YAML, e.g. configs/finetune.yaml."),
    overrides: Optional[list[str]] = typer.Argument(
        None, help="key=value overrides, e.g. model=strong@1500 training.epochs=10 splits.seeds=[122]"
    ),
    data_dir: Optional[Path] = DATA_DIR,
    run_dir: Optional[Path] = RUN_DIR,
    progress: bool = PROGRESS,
    tracking: str = TRACKING,
) -> None:
    """Finetune a checkpoint end to end on each task and split seed, and fit ridge / RBF-SVR
    baselines on frozen features; write a report with errors in the tasks' original units.

    Rerunning the same command skips finished seeds and resumes the one in progress.
    """
    from rich.console import Console

    from molw2s.experiment.config import load_finetune_config
    from molw2s.experiment.finetune import run_finetune
    from molw2s.tracking import checked_tracking

    extra = with_paths(overrides, data_dir, run_dir)
    cfg = load_finetune_config(config, extra)
    results = run_finetune(cfg, progress=progress, tracking=checked_tracking(tracking))
    console = Console()
    for row in results["summary"]:
        std = row["rmse_std"]
        shown = f"{row['rmse_mean']:.3f}" + ("" if std is None else f" +- {std:.3f}")
        console.print(f"{row['task']:>12}  {row['method']:<24} test RMSE {shown}", highlight=False)
    console.print(f"\nreport: {cfg.resolved_run_dir() / 'report' / 'report.md'}", highlight=False)
