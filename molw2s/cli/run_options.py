"""Options shared by the commands that run a config into a run directory (``run``, ``finetune``,
``pretrain``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

DATA_DIR = typer.Option(None, "--data-dir", help="Directory with the task files (overrides data_dir).")
RUN_DIR = typer.Option(None, "--run-dir", help="Where results go (default runs/<name>).")
PROGRESS = typer.Option(
    True,
    "--progress/--no-progress",
    help="Show progress bars (drawn only when stderr is a terminal; MOLW2S_PROGRESS=1 draws them anywhere).",
)
TRACKING = typer.Option(
    "auto",
    "--tracking",
    help="Training curves and summaries to TensorBoard: auto (when tensorboard is installed), tensorboard, none.",
)


def with_paths(overrides: Optional[list[str]], data_dir: Optional[Path], run_dir: Optional[Path]) -> list[str]:
    """The ``key=value`` overrides plus ``data_dir=`` / ``run_dir=`` from the options given."""
    extra = list(overrides or [])
    if data_dir is not None:
        extra.append(f"data_dir={data_dir}")
    if run_dir is not None:
        extra.append(f"run_dir={run_dir}")
    return extra
