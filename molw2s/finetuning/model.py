"""An encoder with a regression head: pooled hidden states -> dropout -> one linear output per task."""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertModel

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


class RegressionModel(nn.Module):
    """``encoder`` (a bare BERT) pooled by ``pooling``, then dropout and a linear head; the
    output is one standardised prediction per molecule and output (``n_outputs`` tasks). An encoder whose config says
    ``fixed_position_embeddings`` (converted MolBERT weights: fixed sinusoids) keeps its
    position table frozen."""

    def __init__(
        self, encoder: BertModel, *, pooling: Pooling = "mean", dropout: float = 0.1, n_outputs: int = 1
    ) -> None:
        super().__init__()
        self.encoder = encoder
        if getattr(encoder.config, "fixed_position_embeddings", False):
            encoder.embeddings.position_embeddings.weight.requires_grad_(False)
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
        layers = list(self.encoder.encoder.layer)
        check_freeze(blocks, len(layers), "training.freeze, w2s.finetune.freeze or student.finetune.freeze")
        for part in [self.encoder.embeddings, *layers][:blocks]:
            for p in part.parameters():
                p.requires_grad_(False)
        return blocks
