"""An encoder with a regression head: pooled hidden states -> dropout -> one linear output per task."""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertModel

from molw2s.encoders.embed import Pooling, pool
from molw2s.encoders.model import padding_attention_mask


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
        """Freeze the bottom ``blocks`` (1 = embeddings, 1 + k = also the first k layers);
        returns how many blocks are frozen (at most embeddings + every layer)."""
        parts: list[nn.Module] = [self.encoder.embeddings, *self.encoder.encoder.layer]
        for part in parts[:blocks]:
            for p in part.parameters():
                p.requires_grad_(False)
        return min(blocks, len(parts))
