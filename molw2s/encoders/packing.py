"""Sequence packing: a padded batch of token sequences laid out as full rows of a fixed width.

Padding wastes work in every layer (the feed-forward and projection matrices run on pad
positions too). Packing places several sequences one after another in rows of
``capacity`` positions (first-fit by decreasing length), restarts the position ids at
each sequence and gives each sequence of a row its own segment id, so a block-diagonal
attention mask (:func:`block_diagonal_mask`) keeps sequences from attending to each other.
The forward pass then computes, for every token, what the padded pass computes (tested in
``tests/test_packing.py``), on about ``sum(lengths) / capacity`` rows instead of
``batch x longest``, and the shapes vary little from batch to batch (rows of one width; the
row count rounded up to ``rows_multiple_of``), which suits ``torch.compile``.

Everything here is index bookkeeping on the host: a :class:`PackedLayout` maps any
per-token tensor of the padded batch (ids, labels) to the packed rows, and records where
each sequence starts (its ``[CLS]``, in the flattened rows) for the pooled outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PackedLayout:
    """Where the tokens of a padded ``(batch, width)`` tensor go in ``(rows, capacity)``."""

    n_rows: int
    capacity: int
    source: torch.Tensor  # flat indices into the padded tensor of every real token
    target: torch.Tensor  # their flat indices in the packed rows
    starts: torch.Tensor  # flat packed index of each sequence's first token, in batch order
    position_ids: torch.Tensor  # (rows, capacity): 0.. within each sequence, 0 on padding
    segments: torch.Tensor  # (rows, capacity): 1.. per sequence within its row, 0 on padding

    def pack(self, padded: torch.Tensor, fill: int) -> torch.Tensor:
        """``padded`` (batch, width) as packed rows, ``fill`` where no token is."""
        out = torch.full((self.n_rows * self.capacity,), fill, dtype=padded.dtype)
        out[self.target] = padded.reshape(-1)[self.source]
        return out.view(self.n_rows, self.capacity)


def plan_packing(lengths: np.ndarray, capacity: int) -> tuple[np.ndarray, np.ndarray, int]:
    """First-fit decreasing: ``(row, offset)`` of every sequence and the number of rows.

    Each sequence lands in the first row (in order of creation) with room for it, longest
    sequences first; ties keep the batch order, so the plan is a pure function of ``lengths``.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) and (lengths.max() > capacity or lengths.min() < 1):
        raise ValueError(f"sequence lengths must lie in [1, {capacity}], got {lengths.min()}..{lengths.max()}")
    rows = np.empty(len(lengths), dtype=np.int64)
    offsets = np.empty(len(lengths), dtype=np.int64)
    used: list[int] = []
    for i in np.argsort(-lengths, kind="stable"):
        n = int(lengths[i])
        row = next((r for r, fill in enumerate(used) if fill + n <= capacity), len(used))
        if row == len(used):
            used.append(0)
        rows[i], offsets[i] = row, used[row]
        used[row] += n
    return rows, offsets, len(used)


def pack_layout(attention_mask: torch.Tensor, capacity: int, *, rows_multiple_of: int = 1) -> PackedLayout:
    """The packing of a right-padded batch (``attention_mask`` 1 on real tokens) into rows
    of ``capacity`` positions, the row count rounded up to ``rows_multiple_of`` with empty
    rows (padding only)."""
    batch, width = attention_mask.shape
    lengths = attention_mask.sum(1).numpy()
    rows, offsets, n_rows = plan_packing(lengths, capacity)
    n_rows = -(-max(n_rows, 1) // rows_multiple_of) * rows_multiple_of
    sequence = np.repeat(np.arange(batch), lengths)
    within = np.arange(len(sequence)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    source = sequence * width + within
    target = rows[sequence] * capacity + offsets[sequence] + within
    position_ids = np.zeros(n_rows * capacity, dtype=np.int64)
    position_ids[target] = within
    segments = np.zeros(n_rows * capacity, dtype=np.int64)
    rank_in_row = _rank_within_rows(rows, offsets)
    segments[target] = rank_in_row[sequence] + 1
    return PackedLayout(
        n_rows=n_rows,
        capacity=capacity,
        source=torch.from_numpy(source),
        target=torch.from_numpy(target),
        starts=torch.from_numpy(rows * capacity + offsets),
        position_ids=torch.from_numpy(position_ids).view(n_rows, capacity),
        segments=torch.from_numpy(segments).view(n_rows, capacity),
    )


def block_diagonal_mask(segments: torch.Tensor) -> torch.Tensor:
    """(rows, 1, capacity, capacity) boolean attention mask: a position attends to the
    positions of its own sequence (padding, segment 0, attends to padding, so no row of
    the softmax is empty; its outputs are never read)."""
    return (segments[:, None, :, None] == segments[:, None, None, :]).contiguous()


def _rank_within_rows(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """0-based order of each sequence within its row (by offset)."""
    order = np.lexsort((offsets, rows))
    rank = np.empty(len(rows), dtype=np.int64)
    first = np.r_[0, np.flatnonzero(np.diff(rows[order])) + 1]
    counts = np.diff(np.r_[first, len(rows)])
    rank[order] = np.arange(len(rows)) - np.repeat(first, counts)
    return rank
