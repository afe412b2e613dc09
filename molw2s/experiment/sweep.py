"""The W2S sweep: one cell per (task, split seed, weak model), each cached on disk.

Each cell is :func:`molw2s.experiment.cell.run_cell`. Its result is a JSON file named by
a content hash of everything that produced it (the two representations' bytes, labels,
indices and settings), written atomically with a digest of its content: a rerun skips
finished cells, a killed sweep resumes where it stopped, and a cell file that is
truncated, empty or altered is moved aside and recomputed. A cell file without one of the
keys a cell now has (:data:`molw2s.experiment.cell.CELL_ROW_KEYS`, derived from the result
types and the baselines: e.g. one written before a predictor baseline was added) is stale
and recomputed, so adding a baseline needs no version bump.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from molw2s.experiment.cell import CELL_ROW_KEYS, CellSplit
from molw2s.experiment.cell_workers import compute_cells, sweep_jobs
from molw2s.experiment.config import ExperimentConfig
from molw2s.experiment.students import LinearStudent, Student
from molw2s.io import CachedResult, array_digest, content_hash, safe_filename
from molw2s.progress import show_progress

#: bump when existing keys of a cell would get other numbers; new keys need no bump (stale cells are detected)
CELL_VERSION = "w2s-cell-v2"
#: settings of the finetuned student: they key a cell only when that student runs
STUDENT_FIELDS = {"student", "finetune", "student_valid_frac"}


def cell_key(
    task: str, weak: str, strong: str, digests: tuple[str, str, str], split: CellSplit, config: ExperimentConfig
) -> str:
    """Content hash of everything a cell's numbers depend on."""
    return content_hash(
        CELL_VERSION,
        task,
        weak,
        strong,
        digests,
        split.weak.tolist(),
        split.strong.tolist(),
        split.test.tolist(),
        config.w2s.model_dump(exclude=STUDENT_FIELDS if config.w2s.student == "linear" else set()),
        config.predictor.model_dump(),
    )


def sweep_task(
    task_name: str,
    y: np.ndarray,
    representations: Mapping[str, np.ndarray],
    splits: Sequence[CellSplit],
    config: ExperimentConfig,
    cells_dir: Path,
    *,
    weak: Sequence[str] | None = None,
    student: Student | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Every (seed, weak model) cell of one task; finished cells are read back, not rerun.
    ``weak`` names the weak models (default ``config.weak``; ``molw2s run`` adds the
    expansions of ``config.expand``); ``student`` (default: the linear heads alone, see
    :mod:`molw2s.experiment.students`) adds its measurements to each cell."""
    from tqdm.auto import tqdm

    digests = {name: array_digest(H) for name, H in representations.items()}
    y_digest = array_digest(np.asarray(y, dtype=np.float64))
    cells = [(split, name) for split in splits for name in (config.weak if weak is None else weak)]
    rows: list[dict[str, Any] | None] = []
    todo: list[tuple[int, CellSplit, str, CachedResult]] = []
    for split, name in cells:
        key = cell_key(task_name, name, config.strong, (digests[name], digests[config.strong], y_digest), split, config)
        path = cells_dir / f"{safe_filename(task_name)}.{safe_filename(name)}.seed{split.seed}.{key}.json"
        cache = CachedResult(path, key, required=CELL_ROW_KEYS)
        rows.append(cache.load())
        if rows[-1] is None:
            todo.append((len(rows) - 1, split, name, cache))
    student = student if student is not None else LinearStudent()
    # worker processes for closed-form heads only: SGD heads and students that train with
    # torch would oversubscribe the cores with torch's own threads
    closed_form = config.w2s.head.solver == "ridge" and config.w2s.weak.solver == "ridge"
    jobs = sweep_jobs(config) if closed_form and student.parallel else 1
    measured = compute_cells(
        [(split, name) for _, split, name, _ in todo],
        representations,
        y,
        config,
        jobs=jobs,
    )
    bar = tqdm(
        total=len(todo), desc=f"W2S cells {task_name}", unit="cell", disable=not show_progress(progress), leave=False
    )
    for (i, split, name, cache), row in zip(todo, measured, strict=True):
        row.update(student.measure(y, representations[name], split, config, progress=progress))
        row.update(
            task=task_name,
            weak=name,
            strong=config.strong,
            seed=split.seed,
            n_split_rows_dropped=split.n_dropped,
        )
        rows[i] = cache.store(row)  # each cell as it arrives: a killed sweep keeps what it finished
        bar.update(1)
    bar.close()
    return [row for row in rows if row is not None]
