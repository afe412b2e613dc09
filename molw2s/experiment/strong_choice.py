"""Choosing a strong student for a fixed weak model, across finished runs that share tasks,
split seeds and weak models (``molw2s report RUN --compare-strong OTHER ...``; criteria and
why raw M is not comparable across strong models: :mod:`molw2s.experiment.selection`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from molw2s.errors import DataError
from molw2s.experiment.selection import STRONG_CRITERIA, selection_regret
from molw2s.experiment.summary import load_results

#: the keys that make two runs' cells the same selection unit
UNIT = ("task", "seed", "weak")


def run_cells(run_dir: Path) -> pd.DataFrame:
    """A finished run's cells (``report/cells.csv``), labelled with the run's strong model."""
    results = load_results(run_dir)
    path = next((p for p in (run_dir / "report" / "cells.csv", run_dir / "cells.csv") if p.is_file()), None)
    if path is None:
        raise DataError(f"no cells.csv in {run_dir / 'report'}: has `molw2s run` finished there?")
    cells: pd.DataFrame = pd.read_csv(path).assign(strong_model=f"{results['config']['strong']} ({results['name']})")
    return cells


def compare_strong(run_dirs: Sequence[Path], *, confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """Per task, the regret of choosing the strong student by each criterion, over the
    (seed, weak model) units every run has, the runs' strong models as candidates."""
    if len(run_dirs) < 2:
        raise DataError("--compare-strong needs at least two runs with different strong models")
    cells = pd.concat([run_cells(Path(d)) for d in run_dirs], ignore_index=True)
    if cells["strong_model"].nunique() < len(run_dirs):
        raise DataError("two of the runs have the same strong model and name: nothing to choose between")
    if "replicate" in cells.columns:
        cells = cells[cells["replicate"].fillna(0) == cells["replicate"].fillna(0).min()]
    complete = cells.groupby(list(UNIT))["strong_model"].transform("nunique") == len(run_dirs)
    shared = cells[complete]
    if shared.empty:
        raise DataError("the runs share no (task, seed, weak model) cell: compare runs of the same tasks and splits")
    return {
        str(task): selection_regret(
            part, criteria=STRONG_CRITERIA, unit_cols=("seed", "weak"), confidence=confidence
        ).assign(task=task)
        for task, part in shared.groupby("task", sort=False)
    }
