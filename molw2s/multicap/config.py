"""Settings of the multi-capability experiments: the student, the selection, the
bootstrapping and the diversity experiment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from molw2s.config import Seed, StrictModel
from molw2s.errors import ConfigError
from molw2s.finetuning.config import FinetuneSettings
from molw2s.w2s.features import DEFAULT_SCALE, Scale
from molw2s.w2s.validation import MAX_BETA

SelectionMethod = Literal["random", "reward", "gap", "disagreement", "oracle"]
#: every selection method; ``oracle`` knows the true weak-label error (an upper bound)
SELECTION_METHODS: tuple[SelectionMethod, ...] = ("random", "reward", "gap", "disagreement", "oracle")


class StudentConfig(StrictModel):
    """The strong student.

    ``shared``: f_c(h) = w_c^T (A h) + b_c with A (``rank`` x d) shared by every capability,
    fitted jointly by full-batch L-BFGS on the masked MSE (capabilities weighted equally)
    plus ``beta`` (||A||^2 + ||W||^2). ``ridge``: one independent closed-form ridge head per
    capability (joint training equals single training by construction: a control). Both
    work on the strong model's frozen representations.
    ``finetune``: the strong encoder (a ``bert:`` checkpoint or ``hf:`` encoder) finetuned end to end with one
    output per capability, on the masked MSE (capabilities weighted equally), as set by
    ``finetune``; each capability's training rows hold out ``valid_frac`` for early
    stopping, validated on the labels the student trains on.
    Stage 2 of two-stage training minimises the same objective on the selection plus
    ``prox`` * ||parameters - stage-1 parameters||^2 (for ``finetune``: every trained
    encoder and head parameter, continuing from stage 1's weights).
    ``seed`` seeds every student (``finetune.seed`` is not used).
    """

    kind: Literal["shared", "ridge", "finetune"] = "shared"
    beta: float = Field(0.05, gt=0, le=MAX_BETA)
    scale: Scale = DEFAULT_SCALE
    rank: int = Field(8, ge=1)
    max_iter: int = Field(300, ge=1)
    """L-BFGS iterations of the shared student (stage 1)."""
    stage2_max_iter: int = Field(300, ge=1)
    """L-BFGS iterations of stage 2 (shared student)."""
    prox: float = Field(0.05, ge=0)
    """Weight of the pull towards the stage-1 parameters in stage 2."""
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    """How the ``finetune`` student trains (stage 1 and stage 2 alike)."""
    valid_frac: float = Field(0.1, gt=0, lt=1)
    """Share of each capability's training rows the ``finetune`` student holds out for early stopping."""
    seed: Seed = 0


class RewardConfig(StrictModel):
    """The reward model (scorer): predicts |weak label - gold| from the strong and weak
    representations (PCA-reduced), the weak prediction and the weak/strong disagreement;
    trained on D_w with cross-fitted (out-of-fold) weak predictions."""

    model: Literal["ridge", "gbm"] = "gbm"
    alpha: float = Field(1.0, gt=0)
    """Ridge penalty of the ``ridge`` scorer (on standardised features)."""
    n_components: int = Field(10, ge=1)
    """PCA components kept from each representation."""
    folds: int = Field(5, ge=2)
    """Folds of the cross-fitting (weak predictions on D_w, strong predictions on D_s)."""


class SelectionConfig(StrictModel):
    """Which selection methods at which fractions of D_s (each in (0, 1])."""

    methods: list[SelectionMethod] = Field(default_factory=lambda: list(SELECTION_METHODS), min_length=1)
    fractions: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75], min_length=1)
    reward: RewardConfig = Field(default_factory=RewardConfig)

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, fractions: list[float]) -> list[float]:
        for f in fractions:
            check_fraction(f)
        return fractions


class BootstrapConfig(StrictModel):
    """Self-bootstrapping: rounds after round 0 (the student on weak labels)."""

    rounds: int = Field(3, ge=1)
    bins: int = Field(20, ge=2)
    """Histogram bins of the prediction entropy (over round 0's prediction range)."""


class DiversityConfig(StrictModel):
    """Random vs scaffold-clustered subsets of D_s of ``fraction`` of its size."""

    fraction: float = 0.5

    @field_validator("fraction")
    @classmethod
    def _fraction(cls, fraction: float) -> float:
        return check_fraction(fraction)


def check_fraction(fraction: float) -> float:
    """``fraction`` if it lies in (0, 1]; a ConfigError otherwise."""
    if not 0.0 < float(fraction) <= 1.0:
        raise ConfigError(f"a selection fraction must lie in (0, 1], got {fraction}")
    return float(fraction)
