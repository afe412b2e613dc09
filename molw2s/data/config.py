"""Specs of data: a corpus, a task, a split (pydantic, strict: unknown keys are errors naming the
valid ones). One schema each, used by pretraining, ``molw2s run``, ``molw2s w2s`` and Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from molw2s.chem.smiles import DEFAULT_MAX_HEAVY_ATOMS
from molw2s.chem.standardize import StandardizeOptions
from molw2s.config import SafeName, Seed, StrictModel
from molw2s.data.curation import BadLabelPolicy, DuplicatePolicy
from molw2s.data.registry import lookup_name, task_aliases, task_names
from molw2s.data.splits import check_fractions
from molw2s.data.tables import csv_stem


class CorpusSpec(StrictModel):
    """Which SMILES corpus to pretrain on and how much of it."""

    name: str = "nci5k"
    """nci5k, guacamol[:train|valid|test|all], moses, or a path to a .smi/.csv/.csv.gz file."""
    n: int | None = Field(default=None, ge=1)
    """Number of valid molecules to draw (None: all)."""
    seed: Seed = 0
    smiles_col: str | None = None
    standardize: StandardizeOptions = StandardizeOptions()
    max_heavy_atoms: int | None = Field(DEFAULT_MAX_HEAVY_ATOMS, ge=1)
    """Larger molecules are excluded and reported (None: no cap)."""


class TaskSpec(StrictModel):
    """A labelled task and how to clean it.

    Its identity (:meth:`identity`) is the registry name or the resolved file path plus
    the column and cleaning settings; its display name (:meth:`display_name`, used in
    results and file names) is ``label`` if given, else the registry name or the file stem.
    """

    name: str
    """ESOL, FreeSolv, Lipop, a demo task (nci_logp, nci_tpsa, nci_bertz, ...), or a path to a CSV file."""
    label: SafeName | None = None
    """Display name in results (default: the registry name, or the CSV file's stem)."""
    smiles_col: str | None = None
    label_col: str | None = None
    duplicates: DuplicatePolicy = "mean"
    """One row per molecule (mean label), so no molecule can sit in two parts; keep, first, error."""
    bad_labels: BadLabelPolicy = "error"
    standardize: StandardizeOptions = StandardizeOptions()
    max_heavy_atoms: int | None = Field(DEFAULT_MAX_HEAVY_ATOMS, ge=1)
    """Larger molecules are excluded and reported (None: no cap)."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: object) -> object:
        """A bare string is the task's name (``ESOL`` = ``{name: ESOL}``)."""
        return {"name": value} if isinstance(value, str) else value

    def source(self) -> str:
        """The registry name (canonical spelling) or the resolved path of the CSV file."""
        key = lookup_name(self.name, task_names(), task_aliases())
        return key if key is not None else str(Path(self.name).expanduser().resolve())

    def identity(self) -> tuple[str, ...]:
        """What makes two specs the same task: source, columns and cleaning settings."""
        settings = self.model_dump(exclude={"name", "label"}, mode="json")
        return (self.source(), json.dumps(settings, sort_keys=True))

    def display_name(self) -> str:
        """``label``, else the registry name, else the file stem (``data/my.csv.gz`` -> ``my``)."""
        if self.label is not None:
            return self.label
        key = lookup_name(self.name, task_names(), task_aliases())
        return key if key is not None else csv_stem(Path(self.name))


class SplitSpec(StrictModel):
    """How a task is split into train / valid / test once per seed, and the training part
    into D_w / D_s (the D_w / D_s draw of a seed uses that seed).

    ``paper`` reads ChemBench's published split files (seeds 122, 123, 124) for ESOL,
    FreeSolv and Lipop; ``random`` and ``scaffold_balanced`` are seeded splits with
    ``frac``; ``scaffold`` is deepchem's deterministic scaffold split; ``file`` reads one
    JSON split file (``path``) and varies only the D_w / D_s draw.
    """

    method: Literal["random", "scaffold", "scaffold_balanced", "paper", "file"] = "random"
    seeds: list[Seed] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    frac: tuple[float, float, float] = (0.8, 0.1, 0.1)
    path: Path | None = None
    """JSON split file for method 'file'."""
    n_weak: int | float = 0.5
    """Size of D_w: a count, or a fraction of the training part."""
    n_strong: int | float = 0.5
    """Size of D_s: a count, or a fraction of the training part."""
    min_weak: int = Field(30, ge=2)
    """Fewest molecules in D_w for a meaningful weak model (smaller: an error)."""
    min_strong: int = Field(30, ge=2)
    """Fewest molecules in D_s (the predictor's n_hat; smaller: an error)."""
    min_test: int = Field(30, ge=1)
    """Fewest test molecules for a meaningful error estimate (smaller: an error)."""

    @field_validator("n_weak", "n_strong")
    @classmethod
    def _size(cls, value: int | float) -> int | float:
        """A count >= 1, or a fraction in (0, 1] of the training part."""
        if isinstance(value, float) and not 0 < value <= 1:
            raise ValueError("a fraction of the training part must lie in (0, 1]; give a count as a whole number")
        if isinstance(value, int) and value < 1:
            raise ValueError("a count must be >= 1")
        return value

    @model_validator(mode="after")
    def _check(self) -> SplitSpec:
        if self.method == "file" and self.path is None:
            raise ValueError("method 'file' needs path: a JSON file with train/valid/test row indices")
        if self.method != "file" and self.path is not None:
            raise ValueError(f"path is only used by method 'file' (method is {self.method!r})")
        if self.method in ("random", "scaffold", "scaffold_balanced"):
            check_fractions(self.frac)
        repeated = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
        if repeated:
            raise ValueError(f"seeds listed twice: {repeated}")
        return self
