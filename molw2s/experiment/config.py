"""Settings of one end-to-end experiment (``configs/quickstart.yaml`` and friends)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from molw2s.config import StrictModel, load_config
from molw2s.data.config import TaskSpec
from molw2s.theory.predictor import PredictorConfig
from molw2s.w2s.heads import HeadConfig


class SplitSettings(StrictModel):
    """How each task is split into train / valid / test, once per seed (the methods of
    :class:`molw2s.data.config.SplitSpec`).

    ``paper`` reads ChemBench's published split files (seeds 122, 123, 124) for ESOL,
    FreeSolv and Lipop; ``random`` and ``scaffold`` are seeded splits with ``frac``;
    ``file`` reads one JSON split file (``path``) and varies only the D_w / D_s draw.
    The D_w / D_s draw of each seed uses that seed.
    """

    method: Literal["random", "scaffold", "scaffold_balanced", "paper", "file"] = "random"
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    frac: tuple[float, float, float] = (0.8, 0.1, 0.1)
    path: Path | None = None


class W2SSettings(StrictModel):
    """Sizes of D_w and D_s (counts or fractions of the training part) and the heads."""

    n_weak: int | float = 0.5
    n_strong: int | float = 0.5
    head: HeadConfig = Field(default_factory=lambda: HeadConfig(scale="trace"))


class EmbeddingSettings(StrictModel):
    """How transformer checkpoints are pooled into one vector per molecule."""

    pooling: Literal["cls", "mean"] = "mean"
    layer: int = -1
    batch_size: int = Field(128, ge=1)


class PredictorSettings(StrictModel):
    """The principal-dimension rule of the headline predictor, and the other rules the
    report compares it with (theory.md section 3: reports show how results depend on it)."""

    primary: PredictorConfig = Field(default_factory=PredictorConfig)
    sensitivity: list[PredictorConfig] = Field(
        default_factory=lambda: [PredictorConfig(rule="tau", tau=0.9), PredictorConfig(rule="tau", tau=0.5)]
    )


class EvaluationSettings(StrictModel):
    """Bootstrap settings of the correlations (see molw2s.analysis.correlations):
    ``resample: models`` redraws weak models with all their seeds; ``models_and_seeds``
    also redraws seeds inside each model (wider, and biased towards zero)."""

    n_boot: int = Field(2000, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = 0
    resample: Literal["models", "models_and_seeds"] = "models"


class ExperimentConfig(StrictModel):
    """One experiment: a strong encoder, many weak ones, tasks, splits and settings.

    Encoder names are either members of the pretrained ``family`` (``weak_s``,
    ``strong@500`` for a snapshot) or featurisers understood by
    :func:`molw2s.encoders.embed.parse_encoder_spec` (``ecfp4-2048``, ``maccs``, ``rdkit2d``).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    run_dir: Path | None = None  # default: runs/<name>
    data_dir: Path | None = None  # task files; default: $MOLW2S_DATA_DIR / cache
    family: Path | None = None  # a family YAML, relative to this config's folder
    family_run_dir: Path | None = None  # where its checkpoints live (default: <run_dir>/models)
    corpus_dir: Path | None = None  # where the family's corpus is looked for (default: the cache)
    strong: str
    weak: list[str] = Field(min_length=2)
    tasks: list[TaskSpec] = Field(min_length=1)  # a name, or {name, smiles_col, label_col, ...}
    strict: bool = False  # stop at an invalid SMILES instead of excluding and reporting it
    splits: SplitSettings = Field(default_factory=SplitSettings)
    w2s: W2SSettings = Field(default_factory=W2SSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    predictor: PredictorSettings = Field(default_factory=PredictorSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)

    @field_validator("tasks", mode="before")
    @classmethod
    def _task_names(cls, tasks: object) -> object:
        if isinstance(tasks, list):
            return [{"name": t} if isinstance(t, str) else t for t in tasks]
        return tasks

    @model_validator(mode="after")
    def _weak_differs_from_strong(self) -> ExperimentConfig:
        repeated = sorted({w for w in self.weak if self.weak.count(w) > 1})
        if repeated:
            raise ValueError(f"weak models listed twice: {repeated}")
        if self.strong in self.weak:
            raise ValueError(f"the strong model {self.strong!r} is also listed as weak")
        return self

    def resolved_run_dir(self) -> Path:
        """The run directory (``runs/<name>`` unless set)."""
        return self.run_dir if self.run_dir is not None else Path("runs") / self.name


def load_experiment_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Load an experiment YAML; a relative ``family`` path is taken from the YAML's folder."""
    config = load_config(ExperimentConfig, path, overrides)
    if config.family is not None and not config.family.is_absolute():
        candidate = Path(path).parent / config.family
        if candidate.is_file():
            config.family = candidate
    return config
