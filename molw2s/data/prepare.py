"""From settings to data: load the configured corpus and tasks, split tasks (in task positions)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from molw2s.data.config import DataConfig, SplitSpec, TaskSpec
from molw2s.data.corpora import Corpus, load_corpus
from molw2s.data.splits import (
    Split,
    W2SSplit,
    load_split_file,
    paper_split,
    random_split,
    scaffold_split,
    to_positions,
    w2s_split,
)
from molw2s.data.tasks import Task, load_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSplit:
    """A task's split and W2S split, both in task positions, plus the split rows dropped."""

    split: Split
    w2s: W2SSplit
    dropped: dict[str, np.ndarray] = field(default_factory=dict)


def load_corpus_spec(config: DataConfig, *, progress: bool = False) -> Corpus:
    """Load the configured pretraining corpus (directory, download and strict settings applied)."""
    spec = config.corpus
    return load_corpus(
        spec.name,
        n=spec.n,
        seed=spec.seed,
        data_dir=config.data_dir,
        smiles_col=spec.smiles_col,
        standardize=spec.standardize,
        strict=config.strict,
        download=config.download,
        progress=progress,
    )


def load_task_spec(spec: TaskSpec, config: DataConfig) -> Task:
    """Load one configured task with the data stage's directory, download and strict settings."""
    return load_task(
        spec.name,
        data_dir=config.data_dir,
        smiles_col=spec.smiles_col,
        label_col=spec.label_col,
        download=config.download,
        standardize=spec.standardize,
        strict=config.strict,
        duplicates=spec.duplicates,
        bad_labels=spec.bad_labels,
    )


def split_task(
    task: Task, spec: SplitSpec, *, data_dir: str | Path | None = None, download: bool = True
) -> TaskSplit:
    """Split ``task`` as ``spec`` says, then draw D_w and D_s from its training part.

    Random, paper and file splits index file rows and are mapped onto the task's
    molecules; rows whose molecule was excluded are dropped, logged, and returned.
    """
    if spec.method in ("scaffold", "scaffold_balanced"):
        seed = spec.seed if spec.method == "scaffold_balanced" else None
        split, dropped = scaffold_split(task.smiles, spec.frac, seed), {}
    else:
        if spec.method == "random":
            rows = random_split(task.n_rows, spec.frac, spec.seed)
        elif spec.method == "paper":
            rows = paper_split(task.name, spec.seed, data_dir, download)
        else:
            rows = load_split_file(spec.path, task.n_rows)
        mapped = to_positions(rows, task.row_index)
        split, dropped = mapped.split, mapped.dropped
        if dropped:
            log.warning("%s: %d split rows refer to excluded molecules and were dropped: %s",
                        task.name, mapped.n_dropped(), {k: v[:5].tolist() for k, v in dropped.items()})
    w2s_seed = spec.seed if spec.w2s_seed is None else spec.w2s_seed
    return TaskSplit(split, w2s_split(split.train, spec.n_weak, spec.n_strong, w2s_seed), dropped)
