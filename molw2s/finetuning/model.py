"""An encoder with a regression head: pooled hidden states -> dropout -> one linear output per task."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from molw2s.encoders.model import padding_attention_mask
from molw2s.encoders.spec import Pooling
from molw2s.encoders.transformer import pool
from molw2s.errors import ConfigError


def check_freeze(blocks: int, layers: int, key: str) -> None:
    """A ConfigError naming ``key`` when freezing ``blocks`` of an encoder with ``layers``
    transformer layers would leave none of them to train."""
    if blocks > layers:
        raise ConfigError(
            f"freeze={blocks} ({key}) would freeze the whole encoder, which has {layers} transformer "
            f"layer(s): use at most {layers} (0 none, 1 the embeddings, 1 + k also the first k layers)"
        )


def encoder_blocks(encoder: nn.Module) -> list[nn.Module]:
    """The blocks ``freeze`` counts, bottom up: the embeddings, then each transformer layer.
    Known layouts: BERT-like encoders (BERT, RoBERTa, ELECTRA, DeBERTa: ``embeddings`` and
    ``encoder.layer``) and T5 encoder stacks (``embed_tokens`` and ``block``); a ConfigError
    naming the model type otherwise."""
    embeddings, layers = getattr(encoder, "embeddings", None), getattr(getattr(encoder, "encoder", None), "layer", None)
    if isinstance(embeddings, nn.Module) and isinstance(layers, nn.ModuleList):
        return [embeddings, *layers]
    tokens, blocks = getattr(encoder, "embed_tokens", None), getattr(encoder, "block", None)
    if isinstance(tokens, nn.Module) and isinstance(blocks, nn.ModuleList):
        return [tokens, *blocks]
    model_type = getattr(getattr(encoder, "config", None), "model_type", type(encoder).__name__)
    raise ConfigError(
        f"freezing layers of hf: models of type {model_type!r} is not supported (their layers are laid out "
        "differently): finetune them with freeze=0"
    )


class RegressionModel(nn.Module):
    """``encoder`` (a bare transformer encoder: BERT, RoBERTa, a T5 encoder ...) pooled by
    ``pooling``, then dropout and a linear head; the output is one standardised prediction
    per molecule and output (``n_outputs`` tasks). An encoder whose config says
    ``fixed_position_embeddings`` (converted MolBERT weights: fixed sinusoids) keeps its
    position table frozen."""

    def __init__(
        self, encoder: PreTrainedModel, *, pooling: Pooling = "mean", dropout: float = 0.1, n_outputs: int = 1
    ) -> None:
        super().__init__()
        self.encoder = encoder
        if getattr(encoder.config, "fixed_position_embeddings", False):
            embeddings: Any = encoder.embeddings  # a BERT's (converted MolBERT weights)
            embeddings.position_embeddings.weight.requires_grad_(False)
        self.pooling: Pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, n_outputs)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, n_outputs) predictions in standardised label units."""
        mask = padding_attention_mask(self.encoder.config, attention_mask)  # 4-d: no wait for the device
        hidden = self.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        pooled = pool(hidden, attention_mask, self.pooling)
        out: torch.Tensor = self.head(self.dropout(pooled))
        return out

    def freeze(self, blocks: int) -> int:
        """Freeze the bottom ``blocks`` (1 = embeddings, 1 + k = also the first k layers) and
        return ``blocks``; a ConfigError when that would leave no transformer layer to train
        (the run would not be end-to-end finetuning)."""
        if blocks == 0:
            return 0
        parts = encoder_blocks(self.encoder)
        check_freeze(blocks, len(parts) - 1, "training.freeze, w2s.finetune.freeze or student.finetune.freeze")
        for part in parts[:blocks]:
            for p in part.parameters():
                p.requires_grad_(False)
        return blocks
