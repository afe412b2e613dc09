"""The strong students of the sweep, chosen by ``w2s.student`` through :data:`STUDENTS`.

Every cell measures the linear heads (:func:`molw2s.experiment.cell.run_cell`); a
:class:`Student` adds what its kind measures to each cell's row. A new student type is one
module implementing :class:`Student` (as :mod:`molw2s.experiment.student` does for the
finetuned student) plus its ``w2s.student`` literal
(:class:`molw2s.experiment.config.W2SSettings`) and its entry in :data:`STUDENTS`.

The multi-capability students (:class:`molw2s.multicap.students.Student`) are a different
shape: they are fitted on several capabilities' labelled rows and refined in a second
stage, while a sweep student measures one cell of one task given its weak model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from molw2s.data.tasks import Task
from molw2s.encoders.spec import ModelRef
from molw2s.experiment.cell import CellSplit
from molw2s.experiment.config import ExperimentConfig
from molw2s.experiment.student import finetuned_students


class Student(Protocol):
    """The strong student of one task's cells."""

    @property
    def parallel(self) -> bool:
        """Whether its cells may be computed in worker processes (False for torch training,
        whose own threads would oversubscribe the cores)."""

    def measure(
        self, y: np.ndarray, H_w: np.ndarray, split: CellSplit, config: ExperimentConfig, *, progress: bool
    ) -> dict[str, Any]:
        """What the student adds to the row of the cell (weak representation ``H_w``, ``split``)."""


#: a student kind: (config, strong model, students' cache root) -> the student of a task
StudentKind = Callable[[ExperimentConfig, ModelRef, Path], Callable[[Task], Student]]


class LinearStudent:
    """The linear heads of :func:`~molw2s.experiment.cell.run_cell` alone: nothing to add."""

    parallel = True

    def measure(
        self, y: np.ndarray, H_w: np.ndarray, split: CellSplit, config: ExperimentConfig, *, progress: bool
    ) -> dict[str, Any]:
        """No keys besides the cell's own."""
        return {}


def linear_students(config: ExperimentConfig, strong: ModelRef, cache_dir: Path) -> Callable[[Task], Student]:
    """The linear student of every task."""
    return lambda task: LinearStudent()


#: the student kinds by their ``w2s.student`` literal
STUDENTS: dict[str, StudentKind] = {"linear": linear_students, "finetune": finetuned_students}


def make_students(config: ExperimentConfig, strong: ModelRef, cache_dir: Path) -> Callable[[Task], Student]:
    """The student of each task, of the kind ``config.w2s.student`` names."""
    return STUDENTS[config.w2s.student](config, strong, cache_dir)
