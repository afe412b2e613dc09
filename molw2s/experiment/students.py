"""The strong students of the sweep, chosen by ``w2s.student`` through :data:`STUDENTS`.

Every cell measures the linear heads (:func:`molw2s.experiment.cell.run_cell`); a
:class:`Student` adds what its kind measures to each cell's row. A new student type is one
module implementing :class:`Student` plus its ``w2s.student`` literal
(:class:`molw2s.experiment.config.W2SSettings`) and its entry in :data:`STUDENTS`.

The multi-capability students (:class:`molw2s.multicap.students.Student`) are a different
shape: they are fitted on several capabilities' labelled rows and refined in a second
stage, while a sweep student measures one cell of one task given its weak model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from molw2s.data.tasks import Task
from molw2s.encoders.spec import ModelRef
from molw2s.experiment.cell import CellSplit
from molw2s.experiment.config import ExperimentConfig
from molw2s.experiment.student import finetuned_ceiling, finetuned_w2s
from molw2s.io import safe_filename


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


@dataclass
class FinetunedStudent:
    """The strong checkpoint finetuned end to end on the weak labels (``ft_*`` keys, see
    :mod:`molw2s.experiment.student`); the finetuned ceiling is trained once per seed."""

    checkpoint: Path
    smiles: Sequence[str]
    cache_dir: Path
    parallel = False
    _ceilings: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def measure(
        self, y: np.ndarray, H_w: np.ndarray, split: CellSplit, config: ExperimentConfig, *, progress: bool
    ) -> dict[str, Any]:
        """The ``ft_*`` measurements of the cell."""
        if split.seed not in self._ceilings:
            self._ceilings[split.seed] = finetuned_ceiling(
                self.checkpoint, self.smiles, y, split, config, self.cache_dir, progress=progress
            )
        ceiling = self._ceilings[split.seed]
        return finetuned_w2s(
            self.checkpoint, self.smiles, y, H_w, split, config, ceiling, self.cache_dir, progress=progress
        )


def finetuned_students(config: ExperimentConfig, strong: ModelRef, cache_dir: Path) -> Callable[[Task], Student]:
    """A finetuned student per task (its models cached under ``cache_dir/<task>``); the
    strong model must be a checkpoint (checked here, before any heavy work)."""
    checkpoint = strong.checkpoint("w2s.student=finetune")
    return lambda task: FinetunedStudent(checkpoint, task.smiles, cache_dir / safe_filename(task.name))


#: the student kinds by their ``w2s.student`` literal
STUDENTS: dict[str, StudentKind] = {"linear": linear_students, "finetune": finetuned_students}


def make_students(config: ExperimentConfig, strong: ModelRef, cache_dir: Path) -> Callable[[Task], Student]:
    """The student of each task, of the kind ``config.w2s.student`` names."""
    return STUDENTS[config.w2s.student](config, strong, cache_dir)
