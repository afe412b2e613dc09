"""Dynamic padding of token-id sequences into a batch (shared by embedding and pretraining)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_id: int, *, multiple_of: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence (rounded up to ``multiple_of``).

    Returns ``(input_ids, attention_mask)`` as int64 tensors of shape (batch, length).
    """
    longest = max(len(s) for s in sequences)
    width = -(-longest // multiple_of) * multiple_of
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        attention[i, : len(seq)] = 1
    return ids, attention
