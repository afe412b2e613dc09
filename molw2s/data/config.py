"""Settings of the data stage (pydantic, strict: unknown keys are errors naming the valid ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from molw2s.chem.standardize import StandardizeOptions
from molw2s.config import StrictModel
from molw2s.data.curation import BadLabelPolicy, DuplicatePolicy


class CorpusSpec(StrictModel):
    """Which SMILES corpus to pretrain on and how much of it."""

    name: str = "nci5k"
    """nci5k, guacamol[:train|valid|test|all], moses, or a path to a .smi/.csv/.csv.gz file."""
    n: int | None = Field(default=None, ge=1)
    """Number of valid molecules to draw (None: all)."""
    seed: int = 0
    smiles_col: str | None = None
    standardize: StandardizeOptions = StandardizeOptions()


class TaskSpec(StrictModel):
    """A labelled task and how to clean it."""

    name: str
    """ESOL, FreeSolv, Lipop, nci_logp, nci_tpsa, nci_mr, or a path to a CSV file."""
    smiles_col: str | None = None
    label_col: str | None = None
    duplicates: DuplicatePolicy = "keep"
    bad_labels: BadLabelPolicy = "error"
    standardize: StandardizeOptions = StandardizeOptions()


class SplitSpec(StrictModel):
    """How a task is split into train/valid/test, and the training part into D_w / D_s."""

    method: Literal["random", "scaffold", "scaffold_balanced", "paper", "file"] = "random"
    frac: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    """Split seed (random, scaffold_balanced; for paper: 122, 123 or 124)."""
    path: Path | None = None
    """JSON split file for method 'file'."""
    n_weak: int | float = 0.5
    """Size of D_w: a count, or a fraction of the training part."""
    n_strong: int | float = 0.5
    """Size of D_s: a count, or a fraction of the training part."""
    w2s_seed: int | None = None
    """Seed of the D_w / D_s draw (default: ``seed``)."""

    @model_validator(mode="after")
    def _check(self) -> SplitSpec:
        if self.method == "file" and self.path is None:
            raise ValueError("method 'file' needs path: a JSON file with train/valid/test row indices")
        if self.method != "file" and self.path is not None:
            raise ValueError(f"path is only used by method 'file' (method is {self.method!r})")
        if self.method in ("random", "scaffold", "scaffold_balanced"):
            from molw2s.data.splits import check_fractions

            check_fractions(self.frac)
        return self


class DataConfig(StrictModel):
    """The data stage: where files are, the corpus, the tasks, the split."""

    data_dir: Path | None = None
    download: bool = True
    strict: bool = False
    """Stop at the first invalid SMILES instead of excluding and reporting it."""
    corpus: CorpusSpec = CorpusSpec()
    tasks: list[TaskSpec] = Field(default_factory=lambda: [TaskSpec(name="nci_logp")])
    split: SplitSpec = SplitSpec()
