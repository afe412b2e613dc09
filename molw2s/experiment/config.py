"""Settings of one end-to-end experiment (``configs/quickstart.yaml`` and friends)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, model_validator

from molw2s.analysis.inference import MIN_SOURCES_FOR_VERDICT
from molw2s.config import SafeName, Seed, StrictModel, load_config
from molw2s.data.config import SplitSpec, TaskSpec
from molw2s.encoders.spec import DEFAULT_POOLING, Pooling, Precision
from molw2s.errors import ConfigError
from molw2s.finetuning.config import BaselineSettings, FinetuneSettings
from molw2s.multicap.config import BootstrapConfig, DiversityConfig, SelectionConfig, StudentConfig
from molw2s.theory.predictor import PredictorConfig
from molw2s.w2s.heads import HeadConfig


class W2SSettings(StrictModel):
    """The linear heads: ``head`` for the W2S model and the strong ceiling, ``weak_head``
    for the weak model (default: the same settings). Both must scale features alike.
    Optionally a finetuned strong student as well (``student: finetune``)."""

    head: HeadConfig = Field(default_factory=HeadConfig)
    weak_head: HeadConfig | None = None
    student: Literal["linear", "finetune"] = "linear"
    """``finetune``: besides the linear heads, the strong encoder is finetuned end to end on
    the weak labels (f_w2s) and on the gold labels (f_sc) of D_s; reported as ``ft_*``."""
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    """How the finetuned students train (with ``student: finetune``)."""
    student_valid_frac: float = Field(0.1, gt=0, lt=1)
    """Share of D_s held out for the finetuned students' early stopping."""

    @model_validator(mode="after")
    def _same_scale(self) -> W2SSettings:
        if self.weak_head is not None and self.weak_head.scale != self.head.scale:
            raise ValueError(
                f"head.scale={self.head.scale!r} and weak_head.scale={self.weak_head.scale!r} differ: "
                "the predictor needs one feature scaling"
            )
        return self

    @property
    def weak(self) -> HeadConfig:
        """The weak model's head settings."""
        return self.weak_head or self.head


class EmbeddingSettings(StrictModel):
    """How transformer checkpoints are pooled into one vector per molecule."""

    pooling: Pooling = DEFAULT_POOLING
    layer: int = -1
    batch_size: int = Field(128, ge=1)
    precision: Precision = "float32"
    """``bfloat16``: forward passes under bf16 autocast (faster on GPUs and on CPUs with
    bf16 units; embeddings cached apart from float32 ones). See docs/experiment.md."""


class PredictorSettings(StrictModel):
    """The principal-dimension rule of the headline predictor, and the other rules the
    report compares it with (theory.md section 3: reports show how results depend on it)."""

    primary: PredictorConfig = Field(default_factory=PredictorConfig)
    sensitivity: list[PredictorConfig] = Field(
        default_factory=lambda: [
            PredictorConfig(rule="flat_tail"),
            PredictorConfig(rule="full_rank"),
            PredictorConfig(rule="tau", tau=0.9),
            PredictorConfig(rule="tau", tau=0.5),
        ]
    )


class ControlledFamily(StrictModel):
    """Weak models made from each task's strong representation, whose ordering of what they
    miss is known by construction (:mod:`molw2s.encoders.controlled`): named
    ``ctrl:subspace=K``, ``ctrl:noise=S`` and ``ctrl:mix=SPEC@W``."""

    subspace_dims: list[int] = Field(default_factory=list)
    """Random subspaces of the strong representation of these dimensions."""
    noise_levels: list[float] = Field(default_factory=list)
    """Gaussian noise of these stds, in units of the strong features' RMS."""
    mix_with: str | None = None
    """A featuriser spec (e.g. ecfp4-2048) mixed into the strong representation."""
    mix_weights: list[float] = Field(default_factory=list)
    """Weights of the featuriser in the mix (0: strong only, 1: featuriser only)."""
    seed: Seed = 0

    @model_validator(mode="after")
    def _check(self) -> ControlledFamily:
        if self.mix_weights and self.mix_with is None:
            raise ValueError("mix_weights need mix_with: the featuriser to mix in (e.g. ecfp4-2048)")
        bad = [k for k in self.subspace_dims if k < 1] + [s for s in self.noise_levels if s < 0]
        bad += [w for w in self.mix_weights if not 0 <= w <= 1]
        if bad:
            raise ValueError(f"subspace_dims must be >= 1, noise_levels >= 0, mix_weights in [0, 1]; got {bad}")
        return self

    def names(self) -> list[str]:
        """The weak-model names this family adds, in order."""
        return (
            [f"ctrl:subspace={k}" for k in self.subspace_dims]
            + [f"ctrl:noise={s:g}" for s in self.noise_levels]
            + [f"ctrl:mix={self.mix_with}@{w:g}" for w in self.mix_weights]
        )


class WeakExpansion(StrictModel):
    """More weak models without more pretraining: every transformer weak model also embedded
    at other ``layers`` (``NAME|layer=L``) and with other ``poolings`` (``NAME|pooling=P``),
    plus a ``controlled`` family made from the strong representation."""

    layers: list[int] = Field(default_factory=list)
    poolings: list[Pooling] = Field(default_factory=list)
    controlled: ControlledFamily = Field(default_factory=ControlledFamily)


class CellSettings(StrictModel):
    """Everything a W2S cell depends on besides its inputs: the split, the heads, the
    pooling of transformer embeddings and the predictor's k rules. ``molw2s run``,
    ``molw2s w2s`` and ``molw2s predict`` read these same settings (same defaults)."""

    splits: SplitSpec = Field(default_factory=SplitSpec)
    w2s: W2SSettings = Field(default_factory=W2SSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    predictor: PredictorSettings = Field(default_factory=PredictorSettings)


class EvaluationSettings(StrictModel):
    """How the evaluation reads the cells (docs/experiment.md "Evaluation").

    ``margin``: a weak model counts as weaker than the strong ceiling when its seed-mean
    Err_w >= (1 + margin) Err_sc; ``exclude_not_weaker`` leaves the others out of the
    headline (they are listed). ``min_sources``: no verdict below this many independent
    weak sources (the default is justified in docs/experiment.md "Calibrated statistics").
    ``n_boot`` resamples the bootstrap intervals of the paired comparisons; ``confidence``
    is the level of every interval. ``relative_errors`` plots Err_w2s / Err_sc (same seed)
    against M instead of Err_w2s."""

    margin: float = Field(0.1, ge=0)
    exclude_not_weaker: bool = True
    min_sources: int = Field(MIN_SOURCES_FOR_VERDICT, ge=3)
    n_boot: int = Field(2000, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: Seed = 0
    relative_errors: bool = False


class TaskList(StrictModel):
    """A list of distinct tasks: a name each, or ``{name, smiles_col, label_col, ...}``."""

    tasks: list[TaskSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _tasks_are_distinct(self) -> TaskList:
        seen: dict[tuple[str, ...], str] = {}
        names: dict[str, str] = {}
        for spec in self.tasks:
            if spec.identity() in seen:
                raise ValueError(f"task {spec.name!r} is listed twice (same file, columns and cleaning settings)")
            seen[spec.identity()] = spec.name
            shown = spec.display_name()
            if shown in names:
                raise ValueError(
                    f"tasks {names[shown]!r} and {spec.name!r} would both be reported as {shown!r}; "
                    "give one of them a distinct label: (e.g. {name: ..., label: my_task_b})"
                )
            names[shown] = spec.name
        return self


class RunSettings(TaskList):
    """What every driver (``run``, ``finetune``, ``multicap``) names: the run, its tasks
    and where they are, the family its models come from, and the split seeds."""

    name: SafeName
    run_dir: Path | None = None  # default: runs/<name>
    data_dir: Path | None = None  # task files; default: $MOLW2S_DATA_DIR / cache
    family: Path | None = None  # a family YAML, relative to this config's folder
    family_run_dir: Path | None = None  # where its checkpoints live (default: <run_dir>/models)
    strict: bool = False  # stop at an invalid SMILES instead of excluding and reporting it
    splits: SplitSpec = Field(default_factory=SplitSpec)

    def resolved_run_dir(self) -> Path:
        """The run directory (``runs/<name>`` unless set)."""
        return self.run_dir if self.run_dir is not None else Path("runs") / self.name

    def resolved_family_run_dir(self) -> Path:
        """Where the family's checkpoints live: ``family_run_dir`` or ``<run_dir>/models``
        (the one default of every driver)."""
        return self.family_run_dir or self.resolved_run_dir() / "models"


class ExperimentConfig(CellSettings, RunSettings):
    """One experiment: a strong encoder, many weak ones, tasks, and the cell settings.

    Encoder names are either members of the pretrained ``family`` (``weak_s``,
    ``strong@500`` for a snapshot) or model specs understood by
    :func:`molw2s.encoders.refs.parse_model_ref` (``ecfp4-2048``, ``maccs``, ``rdkit2d``,
    ``bert:DIR``, ``hf:DIR_OR_NAME``); :mod:`molw2s.experiment.models` resolves them.
    """

    corpus_dir: Path | None = None  # where the family's corpus is looked for (default: the cache)
    sweep_jobs: int | None = Field(None, ge=1)
    """Processes computing the W2S cells (default: every core, up to 16); the cells'
    numbers do not depend on it."""
    strong: str
    weak: list[str] = Field(min_length=2)
    expand: WeakExpansion = Field(default_factory=WeakExpansion)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)

    @model_validator(mode="after")
    def _weak_differs_from_strong(self) -> ExperimentConfig:
        repeated = sorted({w for w in self.weak if self.weak.count(w) > 1})
        if repeated:
            raise ValueError(f"weak models listed twice: {repeated}")
        if self.strong in self.weak:
            raise ValueError(f"the strong model {self.strong!r} is also listed as weak")
        return self


class FinetuneConfig(RunSettings):
    """``molw2s finetune``: one checkpoint finetuned end to end on each task and split seed,
    beside frozen-feature baselines.

    ``model`` is a model directory (``bert:DIR`` or ``DIR``: a family member, a snapshot or
    any Hugging Face BERT directory with a fast tokenizer), any Hugging Face encoder
    (``hf:DIR_OR_NAME``), or the name of a member of ``family`` (``strong``, ``strong@1500``
    for a snapshot).
    """

    model: str
    training: FinetuneSettings = Field(default_factory=FinetuneSettings)
    end_to_end: bool = True
    """Finetune end to end (false: the frozen-feature baselines only)."""
    baselines: BaselineSettings = Field(default_factory=BaselineSettings)


MulticapExperiment = Literal["independence", "quality", "bootstrapping", "selection"]
MULTICAP_EXPERIMENTS: tuple[MulticapExperiment, ...] = ("independence", "quality", "bootstrapping", "selection")


class MulticapConfig(RunSettings):
    """``molw2s multicap``: multi-capability W2S (theory.md section 8): students on frozen
    features, or the strong encoder finetuned (``student.kind: finetune``, which needs a
    family member, ``bert:`` checkpoint or ``hf:`` encoder as ``strong``).

    ``tasks`` are the capabilities; ``strong`` and ``weak`` are family members or
    featuriser specs as in :class:`ExperimentConfig`. ``weak[0]`` supervises every
    experiment; all weak models enter the quality experiment.
    """

    strong: str
    weak: list[str] = Field(min_length=1)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    weak_head: HeadConfig = Field(default_factory=HeadConfig)
    """The weak model (fitted on D_w's gold labels)."""
    strong_head: HeadConfig = Field(default_factory=HeadConfig)
    """The strong ridge head of the disagreement features and of P_s (gap selection)."""
    student: StudentConfig = Field(default_factory=StudentConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)
    diversity: DiversityConfig = Field(default_factory=DiversityConfig)
    predictor: PredictorConfig = Field(default_factory=PredictorConfig)
    """The k rule of P_w and P_s for the ``gap`` selection."""
    experiments: list[MulticapExperiment] = Field(default_factory=lambda: list(MULTICAP_EXPERIMENTS), min_length=1)
    """Default: every experiment that applies (``independence`` needs two or more tasks)."""
    confidence: float = Field(0.95, gt=0, lt=1)
    """Level of the t-intervals over split seeds."""

    @model_validator(mode="after")
    def _models_are_distinct(self) -> MulticapConfig:
        if len(set(self.weak)) != len(self.weak) or self.strong in self.weak:
            raise ValueError(f"strong {self.strong!r} and weak {self.weak} must all be distinct models")
        return self

    @model_validator(mode="after")
    def _independence_needs_two_tasks(self) -> MulticapConfig:
        if len(self.tasks) > 1 or "independence" not in self.experiments:
            return self
        if "experiments" in self.model_fields_set:
            raise ValueError(
                f"experiments: independence compares a capability learnt alone with it learnt beside others, "
                f"and there is one task ({self.tasks[0].display_name()}): add tasks or drop independence"
            )
        self.experiments = [e for e in self.experiments if e != "independence"]
        return self


C = TypeVar("C", bound=RunSettings)


def _load_with_family(model: type[C], path: str | Path, overrides: list[str] | tuple[str, ...]) -> C:
    """Load a YAML into ``model``; a relative ``family`` path is taken from the YAML's folder."""
    config = load_config(model, path, overrides)
    if config.family is not None and not config.family.is_absolute():
        candidate = Path(path).parent / config.family
        if candidate.is_file():
            config.family = candidate
        elif not config.family.is_file():
            raise ConfigError(
                f"{path}: family: no file {config.family} in the config's folder ({candidate.resolve()}) "
                f"or the current one ({config.family.resolve()})"
            )
    elif config.family is not None and not config.family.is_file():
        raise ConfigError(f"{path}: family: no file {config.family}")
    return config


def load_experiment_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Load an experiment YAML; a relative ``family`` path is taken from the YAML's folder."""
    return _load_with_family(ExperimentConfig, path, overrides)


def load_finetune_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> FinetuneConfig:
    """Load a finetuning YAML; a relative ``family`` path is taken from the YAML's folder."""
    return _load_with_family(FinetuneConfig, path, overrides)


def load_multicap_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> MulticapConfig:
    """Load a multi-capability YAML; a relative ``family`` path is taken from the YAML's folder."""
    return _load_with_family(MulticapConfig, path, overrides)
