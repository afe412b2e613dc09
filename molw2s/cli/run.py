"""``molw2s run CONFIG``: the end-to-end experiment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from molw2s.cli.run_options import DATA_DIR, PROGRESS, RUN_DIR, TRACKING, with_paths


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``."""
    app.command("run")(run)


def run(
    config: Path = typer.Argument(..., help="Experiment YAML, e.g. configs/quickstart.yaml."),
    overrides: Optional[list[str]] = typer.Argument(
        None, help="key=value overrides, e.g. splits.seeds=[0] w2s.head.beta=0.1"
    ),
    data_dir: Optional[Path] = DATA_DIR,
    run_dir: Optional[Path] = RUN_DIR,
    progress: bool = PROGRESS,
    tracking: str = TRACKING,
) -> None:
    """Pretrain (or reuse) the family, embed, run every W2S cell, evaluate and write the report.

    Rerunning the same command skips finished work: an interrupted run resumes.
    """
    from rich.console import Console
    from rich.text import Text

    from molw2s.experiment.config import load_experiment_config
    from molw2s.experiment.runner import TIMINGS_FILE, run_experiment
    from molw2s.tracking import checked_tracking

    extra = with_paths(overrides, data_dir, run_dir)
    cfg = load_experiment_config(config, extra)
    results = run_experiment(cfg, progress=progress, tracking=checked_tracking(tracking))
    console = Console()
    out = cfg.resolved_run_dir() / "report"
    for task, res in results["tasks"].items():
        console.print(Text(f"{task}", style="bold") + Text(f": {res['interpretation']}"), highlight=False)
    timings = json.loads((cfg.resolved_run_dir() / TIMINGS_FILE).read_text())
    stages = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in timings["seconds"].items())
    console.print(Text(f"\ntime: {stages} (total {timings['total']:.0f} s; finished work is reused)"))
    console.print(Text(f"report: {out / 'report.md'} (and report.html, results.json, CSV tables, figures/)"))
