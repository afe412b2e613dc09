"""Settings of end-to-end finetuning and of the frozen-feature baselines."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from molw2s.config import Seed, StrictModel
from molw2s.encoders.spec import DEFAULT_POOLING, Pooling


class FinetuneSettings(StrictModel):
    """How an encoder plus a linear regression head is finetuned on one task.

    AdamW with linear warmup (``warmup_frac`` of all steps) and linear decay to zero at
    ``epochs``; labels standardised on the training part; early stopping when the
    validation MSE has not improved for ``patience`` epochs (None: train every epoch),
    after which the best epoch's weights are restored.
    """

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_frac: float = Field(0.1, ge=0, lt=1)
    patience: int | None = Field(5, ge=1)
    freeze: int = Field(0, ge=0)
    """Bottom blocks kept frozen: 0 none, 1 the embeddings, 1 + k the embeddings and the
    first k transformer layers; at most the model's layer count (the top layer trains)."""
    pooling: Pooling = DEFAULT_POOLING
    dropout: float = Field(0.1, ge=0, lt=1)
    grad_clip: float | None = Field(1.0, gt=0)
    bf16: bool = True
    """bf16 autocast on CUDA (ignored on CPU, which trains in float32)."""
    device: str = "auto"
    seed: Seed = 0


BaselineModel = Literal["ridge", "svr"]
BASELINE_MODELS: tuple[BaselineModel, ...] = ("ridge", "svr")


class BaselineSettings(StrictModel):
    """Frozen-feature baselines (MolBERT's published protocol): ``models`` fitted on pooled
    features of each encoder in ``features`` (``checkpoint``: the finetuned checkpoint
    itself, or any featuriser spec such as ``rdkit2d``, ``ecfp4-2048``). Hyperparameters
    are picked on the validation part, then the model is refit on train + validation."""

    features: list[str] = Field(default_factory=lambda: ["checkpoint", "rdkit2d"])
    models: list[BaselineModel] = Field(default_factory=lambda: list(BASELINE_MODELS))
    ridge_alphas: list[float] = Field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0], min_length=1)
    svr_cs: list[float] = Field(default_factory=lambda: [0.1, 1.0, 10.0, 100.0], min_length=1)
