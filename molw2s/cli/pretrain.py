"""``molw2s pretrain``: pretrain a model family from a YAML config, then print its table."""

from __future__ import annotations

from pathlib import Path

import typer

from molw2s.cli.run_options import PROGRESS, TRACKING


def register(app: typer.Typer) -> None:
    """Add the ``pretrain`` command to ``app``."""
    app.command("pretrain")(pretrain)


def pretrain(
    config: Path = typer.Argument(..., help="Family YAML, e.g. configs/family_quickstart.yaml."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. train.num_threads=2."),
    member: list[str] = typer.Option(None, "--member", "-m", help="Train only this member (repeatable)."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Where checkpoints and models go (default: cache)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Directory holding corpus files."),
    progress: bool = PROGRESS,
    tracking: str = TRACKING,
) -> None:
    """Pretrain every member of a family, skipping finished ones; resume killed runs."""
    from molw2s.pretraining.config import load_family_config
    from molw2s.pretraining.family import pretrain_family
    from molw2s.pretraining.report import print_results
    from molw2s.tracking import checked_tracking

    family = load_family_config(config, overrides or [])
    result = pretrain_family(
        family,
        run_dir,
        members=member or None,
        data_dir=data_dir,
        progress=progress,
        tracking=checked_tracking(tracking),
    )
    print_results(result)
