"""``molw2s multicap CONFIG``: multi-capability W2S with data selection and two-stage training."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from molw2s.cli.run_options import DATA_DIR, PROGRESS, RUN_DIR, with_paths


def register(app: typer.Typer) -> None:
    """Add the ``multicap`` command to ``app``."""
    app.command("multicap")(multicap)


def multicap(
    config: Path = typer.Argument(..., help="Multi-capability YAML, e.g. configs/multicap.yaml."),
    overrides: Optional[list[str]] = typer.Argument(
        None, help="key=value overrides, e.g. student.kind=ridge splits.seeds=[0,1] selection.fractions=[0.5]"
    ),
    data_dir: Optional[Path] = DATA_DIR,
    run_dir: Optional[Path] = RUN_DIR,
    progress: bool = PROGRESS,
) -> None:
    """Several capabilities (tasks) learnt from weak labels: independence, quality and
    diversity of weak data, self-bootstrapping, reward-model selection and two-stage training,
    over split seeds with intervals; writes a report. Rerunning resumes finished work."""
    from rich.console import Console

    from molw2s.experiment.config import load_multicap_config
    from molw2s.experiment.multicap import run_multicap

    cfg = load_multicap_config(config, with_paths(overrides, data_dir, run_dir))
    results = run_multicap(cfg, progress=progress)
    console = Console()
    for row in results["summaries"].get("selection_pooled", []):
        if not row["comparison"].endswith(("(two-stage)", "one-stage all")):
            continue
        low, high = row["rel_diff_low"], row["rel_diff_high"]
        interval = "" if low is None else f" [{100 * low:+.1f}, {100 * high:+.1f}]"
        console.print(
            f"{row['comparison']:<48} fraction {row['fraction']:<5g} Err_w2s {100 * row['rel_diff']:+.1f}%{interval}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"\nreport: {cfg.resolved_run_dir() / 'report' / 'report.md'}", highlight=False)
