"""``molw2s pretrain``: pretrain a model family from a YAML config, then print its table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from molw2s.encoders.family import FamilyResult


def register(app: typer.Typer) -> None:
    """Add the ``pretrain`` command to ``app``."""
    app.command("pretrain")(pretrain)


def pretrain(
    config: Path = typer.Argument(..., help="Family YAML, e.g. configs/family_quickstart.yaml."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. train.num_threads=2."),
    member: list[str] = typer.Option(None, "--member", "-m", help="Train only this member (repeatable)."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Where checkpoints and models go (default: cache)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Directory holding corpus files."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Pretrain every member of a family, skipping finished ones; resume killed runs."""
    from molw2s.encoders.config import load_family_config
    from molw2s.encoders.family import pretrain_family

    family = load_family_config(config, overrides or [])
    result = pretrain_family(family, run_dir, members=member or None, data_dir=data_dir, progress=progress)
    print_results(result)


def print_results(result: FamilyResult) -> None:
    """The data report and the held-out table (masked-token accuracy, MLM loss, PhysChem R^2)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # pipes and logs get 80 columns by default: too narrow
        console.width = max(console.width, 110)
    for line in result.data_report:
        console.print(line, highlight=False)
    table = Table(title=f"held-out masked-token prediction ({result.run_dir})")
    for col in ("model", "role", "params", "steps", "accuracy", "MLM loss", "PhysChem R^2", "status"):
        table.add_column(col, justify="left" if col in ("model", "role", "status") else "right", no_wrap=True)
    for row in result.rows:
        m = row.metrics
        table.add_row(
            row.name,
            row.role,
            "-" if row.n_params is None else f"{row.n_params:,}",
            "-" if row.steps is None else str(row.steps),
            _fmt(m.get("mlm_accuracy")),
            _fmt(m.get("mlm_loss")),
            _fmt(m.get("physchem_r2")),
            row.status,
        )
    console.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
