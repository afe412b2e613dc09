"""From specs to data: load a configured corpus or task, split a task (in task positions)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from molw2s.data.config import CorpusSpec, SplitSpec, TaskSpec
from molw2s.data.corpora import Corpus, load_corpus
from molw2s.data.split_files import load_split_file, paper_split
from molw2s.data.splits import Split, W2SSplit, random_split, scaffold_split, to_positions, w2s_split
from molw2s.data.tasks import Task, load_task
from molw2s.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSplit:
    """A task's split and W2S split for one seed, both in task positions, plus the split
    rows dropped because their molecule was excluded."""

    seed: int
    split: Split
    w2s: W2SSplit
    dropped: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_dropped(self) -> int:
        """How many split rows were dropped."""
        return sum(len(v) for v in self.dropped.values())


def load_corpus_spec(
    spec: CorpusSpec,
    *,
    data_dir: str | Path | None = None,
    strict: bool = False,
    download: bool = True,
    progress: bool = False,
    n_jobs: int = 1,
) -> Corpus:
    """Load the corpus ``spec`` names (from ``data_dir``, the cache or a download), its
    SMILES parsed by ``n_jobs`` processes."""
    return load_corpus(
        spec.name,
        n=spec.n,
        seed=spec.seed,
        data_dir=data_dir,
        smiles_col=spec.smiles_col,
        standardize=spec.standardize,
        strict=strict,
        download=download,
        progress=progress,
        max_heavy_atoms=spec.max_heavy_atoms,
        n_jobs=n_jobs,
    )


def load_task_spec(
    spec: TaskSpec, *, data_dir: str | Path | None = None, strict: bool = False, download: bool = True
) -> Task:
    """Load one configured task (columns and cleaning policies from ``spec``), named by
    :meth:`TaskSpec.display_name`."""
    task = load_task(
        spec.name,
        data_dir=data_dir,
        smiles_col=spec.smiles_col,
        label_col=spec.label_col,
        download=download,
        standardize=spec.standardize,
        strict=strict,
        duplicates=spec.duplicates,
        bad_labels=spec.bad_labels,
        max_heavy_atoms=spec.max_heavy_atoms,
    )
    return task if spec.label is None else replace(task, name=spec.label)


def split_task(
    task: Task, spec: SplitSpec, seed: int, *, data_dir: str | Path | None = None, download: bool = True
) -> TaskSplit:
    """Split ``task`` as ``spec`` says with ``seed``, then draw D_w and D_s (with the same
    seed) from its training part.

    Random, paper and file splits index file rows and are mapped onto the task's
    molecules; rows whose molecule was excluded are dropped, logged, and returned. A merged
    duplicate's row indexes its kept twin; a molecule in several parts stays in the earliest
    (train, valid, test) only, logged.
    """
    if spec.method in ("scaffold", "scaffold_balanced"):
        scaffold_seed = seed if spec.method == "scaffold_balanced" else None
        split, dropped = scaffold_split(task.smiles, spec.frac, scaffold_seed), {}
    else:
        rows = split_rows(task.n_rows, spec, seed, name=task.name, data_dir=data_dir, download=download)
        mapped = to_positions(rows, task.row_index, task.duplicates)
        split, dropped = mapped.split, mapped.dropped
        if mapped.moved:
            log.warning(
                "%s: %d split rows hold a molecule that is also in an earlier part (train < valid < test); "
                "it stays in the earliest part only: %s",
                task.name,
                mapped.n_moved(),
                {k: v[:5].tolist() for k, v in mapped.moved.items()},
            )
        if dropped:
            log.warning(
                "%s: %d split rows refer to excluded molecules and were dropped: %s",
                task.name,
                mapped.n_dropped(),
                {k: v[:5].tolist() for k, v in dropped.items()},
            )
    return TaskSplit(seed, split, w2s_split(split.train, spec.n_weak, spec.n_strong, seed), dropped)


def split_rows(
    n_rows: int,
    spec: SplitSpec,
    seed: int,
    *,
    name: str | None = None,
    data_dir: str | Path | None = None,
    download: bool = True,
) -> Split:
    """The train / valid / test file rows of a random, paper (of task ``name``) or file
    split of ``n_rows`` rows; a scaffold or paper split without molecules or a task name
    is a ConfigError."""
    if spec.method == "random":
        return random_split(n_rows, spec.frac, seed)
    if spec.method == "file":
        assert spec.path is not None  # SplitSpec checks it
        return load_split_file(spec.path, n_rows)
    if spec.method == "paper" and name is not None:
        return paper_split(name, seed, data_dir, download)
    raise ConfigError(
        f"splits.method={spec.method} needs a task's molecules and name; bare arrays take a random or file split"
    )


def split_arrays(n_rows: int, spec: SplitSpec, seed: int, *, split_file: str | Path | None = None) -> TaskSplit:
    """:func:`split_task` for bare arrays of ``n_rows`` rows (positions are rows): the
    split of ``split_file`` when given, else ``spec``'s random or file split."""
    split = load_split_file(split_file, n_rows) if split_file is not None else split_rows(n_rows, spec, seed)
    return TaskSplit(seed, split, w2s_split(split.train, spec.n_weak, spec.n_strong, seed))


def split_task_seeds(
    task: Task, spec: SplitSpec, *, data_dir: str | Path | None = None, download: bool = True
) -> list[TaskSplit]:
    """:func:`split_task` for every seed of ``spec``."""
    return [split_task(task, spec, seed, data_dir=data_dir, download=download) for seed in spec.seeds]
