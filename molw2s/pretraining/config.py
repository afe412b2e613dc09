"""Pydantic settings of pretraining: corpus preparation, optimisation, family members.

A family YAML (``configs/family_*.yaml``) is a :class:`FamilyConfig`. No torch here, so
a config is validated (e.g. heads that do not divide the hidden size) before anything
heavy is imported or trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from molw2s.config import SafeName, Seed, StrictModel, build_model, load_config
from molw2s.data.config import CorpusSpec, TaskSpec
from molw2s.encoders.model_size import ModelSizeConfig
from molw2s.errors import ConfigError


class PretrainingDataConfig(StrictModel):
    """Corpus, held-out split, vocabulary and per-molecule inputs (shared by all members).

    ``corpus`` is a :class:`~molw2s.data.config.CorpusSpec` (``{name, n, seed, ...}``) or
    just its name; its ``seed`` also seeds the held-out split and the vocabulary's
    randomised SMILES.
    """

    corpus: CorpusSpec = Field(default_factory=CorpusSpec)
    val_fraction: float = Field(0.05, gt=0.0, lt=0.5)
    max_val: int | None = Field(5000, ge=1)  # cap on held-out molecules
    min_freq: int = Field(1, ge=1)  # rarer tokens become [UNK]
    max_length: int = Field(128, ge=8)  # ids per sequence, [CLS] and [SEP] included
    overlong: Literal["truncate", "exclude"] = "truncate"
    mask_prob: float = Field(0.15, gt=0.0, lt=1.0)  # BERT masking, training and held-out
    augment: bool = True  # SMILES enumeration: a fresh random SMILES per sample
    physchem: bool = True  # the PhysChem head and its descriptor targets
    physchem_clip: float = Field(5.0, gt=0.0)  # normalised descriptors clipped to +-clip
    descriptor_jobs: int | None = Field(None, ge=1)
    """Processes preparing the corpus: parsing, vocabulary counts, tokenising, descriptors
    (None: up to 4); the prepared data does not depend on it."""
    mix_tasks: list[TaskSpec] = Field(default_factory=list)
    """Tasks whose molecules (never their labels) join the training corpus, so the
    vocabulary covers their tokens ([UNK] rate ~0) and those tokens are trained."""

    @field_validator("corpus", mode="before")
    @classmethod
    def _corpus_name(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value


class TrainConfig(StrictModel):
    """Optimisation and bookkeeping for one member."""

    batch_size: int = Field(32, ge=1)  # global: summed over data-parallel ranks
    lr: float = Field(5e-4, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    warmup_steps: int = Field(100, ge=0)
    decay: Literal["linear", "cosine", "constant"] = "linear"
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)
    grad_clip: float | None = Field(1.0, gt=0.0)
    mlm_weight: float = Field(1.0, ge=0.0)
    physchem_weight: float = Field(1.0, ge=0.0)
    bucket_batches: int = Field(50, ge=1)  # batches per length-sorted bucket
    seed: Seed = 0
    checkpoint_every: int = Field(200, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    eval_every: int = Field(200, ge=1)
    eval_batch_size: int = Field(128, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = True  # autocast on CUDA
    bf16_cpu: bool | Literal["auto"] = False
    """bf16 autocast on the CPU too (weights stay float32): ~1.5x faster on CPUs with native
    bfloat16 (AVX512-BF16, AMX), slower on others; ``auto``: only on those."""
    num_threads: int | None = Field(None, ge=1)  # torch CPU threads (None: torch default)
    micro_batches: int = Field(1, ge=1)
    """Gradient accumulation: each step's batch runs as this many chunks (same gradient,
    less memory; for large global batches)."""
    packing: int | None = Field(None, ge=8)
    """Row width of packed batches (>= data.max_length, e.g. 128 or 256): each micro-batch's
    molecules are packed into full rows (block-diagonal attention) instead of padded to the
    longest, so no work is spent on padding and shapes barely vary (for ``compile``); the
    same loss and gradient. None: padded batches. Needs transformers >= 5."""
    compile: bool = False
    """``torch.compile`` the model (the first steps are slow while it compiles; pays on CUDA)."""
    compile_mode: Literal["default", "max-autotune-no-cudagraphs"] = "default"
    """``torch.compile``'s mode (compiled with dynamic shapes: no recompilation when a batch's
    width or masked-token count changes). The CUDA-graph modes (``reduce-overhead``,
    ``max-autotune``) are not offered: a graph is recorded per shape, and the number of
    masked tokens changes every step, so they re-record on almost every step."""
    data_workers: int | None = Field(None, ge=0)
    """Processes building batches ahead of the loop (None: 0 on CPU, up to 8 on CUDA); the
    batches, and so the weights, do not depend on it."""


class MemberConfig(StrictModel):
    """One model of the family: a size, a number of steps, and named snapshots."""

    name: SafeName
    model: ModelSizeConfig
    steps: int = Field(ge=1)
    snapshots: list[int] = Field(default_factory=list)  # steps exported as "<name>@<step>"
    train: dict[str, Any] = Field(default_factory=dict)  # overrides of the family's train

    @model_validator(mode="after")
    def _snapshots_inside_run(self) -> MemberConfig:
        bad = [s for s in self.snapshots if not 0 < s < self.steps]
        if bad:
            raise ValueError(
                f"member {self.name!r}: snapshots {bad} must lie strictly between 0 and steps={self.steps}"
            )
        return self


class FamilyConfig(StrictModel):
    """A weak family and a strong model pretrained on the same data and vocabulary."""

    name: SafeName
    strong: str  # the member name of the strong model
    data: PretrainingDataConfig = Field(default_factory=PretrainingDataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    members: list[MemberConfig] = Field(min_length=1)
    seeds: list[Seed] = Field(default_factory=list)
    """Pretraining seeds: every member is trained once per seed (a *replicate*), each seed
    replacing ``train.seed``, which seeds the initialisation, the batch order, the masks and
    the randomised SMILES of each step; the corpus, held-out split and vocabulary
    (``data.corpus.seed``) are shared. Empty: one replicate under ``train.seed``, as
    before. A replicate under ``train.seed`` keeps the usual paths; the others live under
    ``<run_dir>/seed=<seed>/`` (:func:`molw2s.pretraining.family.replicate_dir`)."""
    parallel_members: int = Field(1, ge=1)
    """Members trained at the same time, each in its own process (longest first); on a CPU
    each gets ``train.num_threads`` threads (default: the cores shared out). The weights do
    not depend on it."""

    @model_validator(mode="after")
    def _check_members(self) -> FamilyConfig:
        names = [m.name for m in self.members]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"member names must be unique; repeated: {dupes}")
        if self.strong not in names:
            raise ValueError(f"strong={self.strong!r} is not a member; members: {names}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be unique; got {self.seeds}")
        for member in self.members:
            if self.seeds and "seed" in member.train:
                raise ValueError(f"member {member.name!r}: train.seed cannot be overridden when the family sets seeds")
            self.member_train(member)  # validates every member's overrides now
        return self

    def replicates(self) -> list[int | None]:
        """The pretraining seed of each replicate: ``seeds``, or ``[None]`` when it is
        empty (one replicate, every member under its own ``train.seed``)."""
        return list(self.seeds) or [None]

    def member(self, name: str) -> MemberConfig:
        """The member called ``name``; a ConfigError listing the members otherwise."""
        for m in self.members:
            if m.name == name:
                return m
        raise ConfigError(f"family {self.name!r} has no member {name!r}; members: {[m.name for m in self.members]}")

    def member_train(self, member: MemberConfig, seed: int | None = None) -> TrainConfig:
        """The family's train settings with the member's overrides applied and validated;
        ``seed`` (a replicate's pretraining seed) replaces ``train.seed``."""
        merged = {**self.train.model_dump(), **member.train}
        if seed is not None:
            merged["seed"] = seed
        return build_model(TrainConfig, merged, source=f"members[{member.name}].train")


def load_family_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> FamilyConfig:
    """Load and validate a family YAML with ``key=value`` overrides."""
    return load_config(FamilyConfig, path, overrides)
