"""``molw2s data validate``: per task, rows, valid / invalid SMILES, bad labels, duplicates,
and every split JSON found next to the task's file checked against its rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from molw2s.chem.smiles import InvalidSmiles
from molw2s.data.curation import BadLabel
from molw2s.data.registry import SPLIT_SUBDIR, TASK_SOURCES
from molw2s.data.split_files import load_split_file
from molw2s.data.splits import to_positions
from molw2s.data.tasks import Task, load_task
from molw2s.errors import MolW2SError


@dataclass(frozen=True)
class SplitCheck:
    """One split file checked against a task: part sizes, rows pointing at excluded molecules."""

    path: Path
    sizes: dict[str, int] | None = None
    n_dropped: int = 0
    error: str | None = None


@dataclass
class TaskCheck:
    """What ``validate`` found for one task (``error`` set when it could not be read at all)."""

    name: str
    source: Path | None = None
    n_rows: int = 0
    expected_rows: int | None = None
    invalid: list[InvalidSmiles] = field(default_factory=list)
    bad_labels: list[BadLabel] = field(default_factory=list)
    duplicates: list[np.ndarray] = field(default_factory=list)
    duplicate_labels: list[np.ndarray] = field(default_factory=list)
    """The labels of each group of ``duplicates``, in the same order."""
    n_kept: int = 0
    splits: list[SplitCheck] = field(default_factory=list)
    error: str | None = None

    @property
    def conflicting(self) -> list[int]:
        """Positions in ``duplicates`` of the groups whose labels differ."""
        return [i for i, labels in enumerate(self.duplicate_labels) if label_spread(labels) > 0]

    @property
    def n_valid_smiles(self) -> int:
        """Rows whose SMILES parsed."""
        return self.n_rows - len(self.invalid)

    @property
    def ok(self) -> bool:
        """No unreadable file, invalid SMILES, bad label, row-count mismatch or bad split."""
        return (
            self.error is None
            and not self.invalid
            and not self.bad_labels
            and (self.expected_rows is None or self.expected_rows == self.n_rows)
            and all(s.error is None for s in self.splits)
        )


def check_task(
    name: str,
    *,
    data_dir: str | Path | None = None,
    smiles_col: str | None = None,
    label_col: str | None = None,
    download: bool = False,
) -> TaskCheck:
    """Load ``name`` leniently (bad labels dropped, duplicates kept) and collect every problem."""
    try:
        task = load_task(
            name,
            data_dir=data_dir,
            smiles_col=smiles_col,
            label_col=label_col,
            download=download,
            bad_labels="drop",
            duplicates="keep",
        )
    except MolW2SError as exc:
        return TaskCheck(name=name, error=str(exc))
    expected = TASK_SOURCES[task.name].n_rows if task.name in TASK_SOURCES else None
    position = {int(row): i for i, row in enumerate(task.row_index)}  # duplicates are kept here
    return TaskCheck(
        name=task.name,
        source=task.source,
        n_rows=task.n_rows,
        expected_rows=expected,
        invalid=task.invalid,
        bad_labels=task.bad_labels,
        duplicates=task.duplicates,
        duplicate_labels=[task.y[[position[int(row)] for row in group]] for group in task.duplicates],
        n_kept=len(task),
        splits=[check_split(path, task) for path in find_split_files(task)],
    )


def label_spread(labels: np.ndarray) -> float:
    """Largest minus smallest of ``labels`` (0 when they agree to 1e-9 relative)."""
    spread = float(np.max(labels) - np.min(labels))
    return 0.0 if spread <= 1e-9 * max(1.0, float(np.max(np.abs(labels)))) else spread


def find_split_files(task: Task) -> list[Path]:
    """``<TASK>.*.json`` files in the task file's folder and its ``splits/`` sub-folder."""
    prefix = task.name if task.name in TASK_SOURCES else task.source.name.split(".")[0]
    folder = task.source.parent
    return sorted(p for d in (folder, folder / SPLIT_SUBDIR) if d.is_dir() for p in d.glob(f"{prefix}.*.json"))


def check_split(path: Path, task: Task) -> SplitCheck:
    """Validate one split file against the task's row count; count rows of excluded molecules."""
    try:
        split = load_split_file(path, task.n_rows)
    except MolW2SError as exc:
        return SplitCheck(path, error=str(exc))
    return SplitCheck(path, split.sizes(), to_positions(split, task.row_index).n_dropped())
