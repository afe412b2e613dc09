"""Labelled regression tasks: ESOL, FreeSolv, Lipop (either file layout), demo tasks, any CSV.

Rows are 0-based data rows of the source file (file line = row + 2 for a CSV with a
header). ``Task.row_index[i]`` is the file row of molecule ``i``, so split files, which
index file rows, map onto task positions with :func:`molw2s.data.splits.to_positions`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from molw2s.chem.smiles import DEFAULT_MAX_HEAVY_ATOMS, InvalidSmiles, format_invalid, parse_smiles
from molw2s.chem.standardize import StandardizeOptions
from molw2s.data.corpora import load_corpus
from molw2s.data.curation import (
    BadLabel,
    BadLabelPolicy,
    DuplicatePolicy,
    apply_duplicate_policy,
    duplicate_groups,
    parse_labels,
)
from molw2s.data.locate import find_task_file
from molw2s.data.registry import (
    DEMO_TASKS,
    TASK_SOURCES,
    lookup_name,
    resolve_name,
    task_aliases,
    task_names,
)
from molw2s.data.tables import csv_stem, is_csv, read_csv_columns, read_header
from molw2s.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class Task:
    """Valid molecules of a task (canonical SMILES), labels, and what was excluded."""

    name: str
    smiles: list[str]
    y: np.ndarray
    source: Path
    row_index: np.ndarray
    n_rows: int
    smiles_col: str
    label_col: str
    description: str = ""
    invalid: list[InvalidSmiles] = field(default_factory=list)
    bad_labels: list[BadLabel] = field(default_factory=list)
    duplicates: list[np.ndarray] = field(default_factory=list)
    duplicate_policy: str = "mean"
    conflicting: list[np.ndarray] = field(default_factory=list)
    """The groups of ``duplicates`` whose labels differ (file rows)."""

    def __len__(self) -> int:
        return len(self.smiles)

    def report(self, max_examples: int = 3) -> str:
        """Rows read, molecules kept, and every exclusion (with examples)."""
        lines = [
            f"task {self.name}: {len(self)} molecules kept of {self.n_rows} rows in {self.source}",
            format_invalid(self.invalid, self.n_rows, max_examples=max_examples),
        ]
        if self.bad_labels:
            lines.append(f"{len(self.bad_labels)} bad label(s) in column {self.label_col!r} (rows excluded):")
            lines += [f"  {b}" for b in self.bad_labels[:max_examples]]
        if self.duplicates:
            lines.append(
                f"{len(self.duplicates)} molecule(s) appear more than once (policy {self.duplicate_policy!r});"
                f" e.g. rows {', '.join(str(g.tolist()) for g in self.duplicates[:max_examples])}"
            )
        if self.conflicting:
            lines.append(
                f"{len(self.conflicting)} of them with conflicting labels;"
                f" e.g. rows {', '.join(str(g.tolist()) for g in self.conflicting[:max_examples])}"
            )
        return "\n".join(lines)


def list_tasks() -> list[str]:
    """Task names :func:`load_task` accepts; a path to a ``.csv`` / ``.csv.gz`` file works too."""
    return [*task_names(), "csv"]


@dataclass(frozen=True)
class Cleaning:
    """How a task's rows are cleaned: standardisation, size cap, strictness, policies."""

    standardize: StandardizeOptions | None = None
    max_heavy_atoms: int | None = DEFAULT_MAX_HEAVY_ATOMS
    strict: bool = False
    duplicates: DuplicatePolicy = "mean"
    bad_labels: BadLabelPolicy = "error"


def load_task(
    name: str,
    *,
    data_dir: str | Path | None = None,
    smiles_col: str | None = None,
    label_col: str | None = None,
    download: bool = True,
    standardize: StandardizeOptions | None = None,
    strict: bool = False,
    duplicates: DuplicatePolicy = "mean",
    bad_labels: BadLabelPolicy = "error",
    max_heavy_atoms: int | None = DEFAULT_MAX_HEAVY_ATOMS,
) -> Task:
    """Load a task by name (``ESOL``, ``FreeSolv``, ``Lipop``, ``nci_logp`` ...) or CSV path.

    Invalid SMILES, and molecules with more than ``max_heavy_atoms`` heavy atoms, are
    excluded and listed in ``Task.invalid`` (``strict`` raises instead). A label that is
    not a finite number raises :class:`DataError` naming file, row and column
    (``bad_labels="drop"`` excludes and lists it instead). Duplicate molecules (same
    canonical SMILES) are listed and handled by ``duplicates``: by default (``mean``) each
    keeps its first row with the group's mean label, so a split cannot put one molecule in
    two parts; groups whose labels differ are listed in ``Task.conflicting``. A CSV task is named after
    its file's stem (``data/my.csv`` -> ``my``).
    """
    cleaning = Cleaning(standardize, max_heavy_atoms, strict, duplicates, bad_labels)
    key = lookup_name(name, task_names(), task_aliases())
    path = Path(name).expanduser()
    if key is None and (path.is_file() or is_csv(path)):
        if not path.is_file():
            raise DataError("file not found", path=path)
        header = read_header(path)
        smiles_col = smiles_col or _guess_smiles_col(header, path)
        label_col = label_col or _guess_label_col(header, smiles_col, path)
        return _from_file(csv_stem(path), path, "", smiles_col, label_col, cleaning)
    key = key or resolve_name(name, task_names(), task_aliases(), "task")
    if key in DEMO_TASKS:
        return _demo_task(key, cleaning)
    source = TASK_SOURCES[key]
    path = find_task_file(source, data_dir, download)
    columns = (smiles_col or source.smiles_col, label_col or source.label_col)
    return _from_file(key, path, source.description, *columns, cleaning)


def _from_file(name: str, path: Path, description: str, smiles_col: str, label_col: str, cleaning: Cleaning) -> Task:
    table = read_csv_columns(path, [smiles_col, label_col])
    lines = table.lines
    parsed = parse_smiles(
        table.values[smiles_col],
        standardize=cleaning.standardize,
        source=str(path),
        max_heavy_atoms=cleaning.max_heavy_atoms,
    )
    invalid = [replace(item, line=lines[item.row]) for item in parsed.invalid]
    if cleaning.strict and invalid:
        raise DataError(f"strict mode: {format_invalid(invalid, len(table))}", path=path, column=smiles_col)
    y_all, bad = parse_labels(table.values[label_col])
    bad = [replace(item, line=lines[item.row]) for item in bad]
    if bad and cleaning.bad_labels == "error":
        first = bad[0]
        more = f" ({len(bad) - 1} more bad label(s); bad_labels='drop' excludes them)" if len(bad) > 1 else ""
        raise DataError(
            f"line {first.line}: label {first.value!r} is {first.reason}{more}",
            path=path,
            row=first.row,
            column=label_col,
        )
    finite = np.isfinite(y_all[parsed.index])
    rows = parsed.index[finite]
    task = Task(
        name=name,
        smiles=[s for s, ok in zip(parsed.smiles, finite) if ok],
        y=y_all[rows],
        source=path,
        row_index=rows,
        n_rows=len(table),
        smiles_col=smiles_col,
        label_col=label_col,
        description=description,
        invalid=invalid,
        bad_labels=bad,
    )
    return _usable(_resolve_duplicates(task, cleaning.duplicates))


def _demo_task(key: str, cleaning: Cleaning) -> Task:
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    descriptor, description = DEMO_TASKS[key]
    corpus = load_corpus(
        "nci5k", standardize=cleaning.standardize, strict=cleaning.strict, max_heavy_atoms=cleaning.max_heavy_atoms
    )
    fn = getattr(Descriptors, descriptor)
    task = Task(
        name=key,
        smiles=corpus.smiles,
        y=np.array([fn(Chem.MolFromSmiles(s)) for s in corpus.smiles], dtype=np.float64),
        source=corpus.source,
        row_index=corpus.rows,
        n_rows=corpus.n_total,
        smiles_col="smiles",
        label_col=descriptor,
        description=description,
        invalid=corpus.invalid,
    )
    return _usable(_resolve_duplicates(task, cleaning.duplicates))


def _usable(task: Task) -> Task:
    """``task``, or a DataError naming it and its file when no molecule is left to use."""
    if len(task) == 0:
        raise DataError(
            f"task {task.name}: no usable molecule in {task.n_rows} row(s) "
            f"({len(task.invalid)} invalid SMILES, {len(task.bad_labels)} bad label(s), column "
            f"{task.smiles_col!r} / {task.label_col!r}); check the file and its columns",
            path=task.source,
        )
    return task


def _resolve_duplicates(task: Task, policy: DuplicatePolicy) -> Task:
    """Record duplicate groups (as file rows) and those with conflicting labels, and apply the
    duplicate policy."""
    groups = duplicate_groups(task.smiles)
    conflicting = [task.row_index[g] for g in groups if np.ptp(task.y[g]) > 0]
    if conflicting and policy == "mean":
        log.warning(
            "%s: %d duplicated molecule(s) with conflicting labels, merged to their mean label; e.g. rows %s",
            task.name,
            len(conflicting),
            [g.tolist() for g in conflicting[:3]],
        )
    described = [f"rows {task.row_index[g].tolist()}: {task.smiles[g[0]]}" for g in groups]
    try:
        keep, y = apply_duplicate_policy(task.y, groups, policy, describe=described)
    except DataError as exc:
        raise DataError(str(exc), path=task.source) from None
    return replace(
        task,
        smiles=[task.smiles[i] for i in keep],
        y=y,
        row_index=task.row_index[keep].astype(np.int64),
        duplicates=[task.row_index[g] for g in groups],
        duplicate_policy=policy,
        conflicting=conflicting,
    )


def _guess_smiles_col(header: list[str], path: Path) -> str:
    for col in header:
        if col.lower() == "smiles":
            return col
    raise DataError(f"no 'smiles' column; pass smiles_col (the file has columns {header})", path=path)


def _guess_label_col(header: list[str], smiles_col: str, path: Path) -> str:
    others = [c for c in header if c != smiles_col]
    if len(others) == 1:
        return others[0]
    raise DataError(f"pass label_col: which column is the label? the file has columns {header}", path=path)
