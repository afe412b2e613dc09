"""Length-bucketed batch order and data-parallel sharding of the pretraining corpus.

The order of an epoch is a pure function of ``(seed, epoch)``: a resumed run rebuilds the
same batches and skips to its position, so no sampler state needs pickling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bucketed_batches(
    lengths: np.ndarray,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    bucket_batches: int = 50,
    drop_last: bool = True,
) -> list[np.ndarray]:
    """Batches of indices with similar lengths, in a random order.

    Shuffle all indices, cut them into buckets of ``batch_size * bucket_batches``, sort
    each bucket by length, cut it into batches and shuffle the batches. Small buckets keep
    the order random; sorting inside them removes most of the padding.
    """
    if batch_size < 1 or bucket_batches < 1:
        raise ValueError("batch_size and bucket_batches must be >= 1")
    lengths = np.asarray(lengths)
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(len(lengths))
    chunk = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), chunk):
        bucket = perm[start : start + chunk]
        bucket = bucket[np.argsort(lengths[bucket], kind="stable")]
        batches.extend(bucket[i : i + batch_size] for i in range(0, len(bucket), batch_size))
    if drop_last:
        batches = [b for b in batches if len(b) == batch_size]
    return [batches[i] for i in rng.permutation(len(batches))]


def shard_batches(batches: Sequence[np.ndarray], rank: int, world_size: int) -> list[np.ndarray]:
    """Rank ``rank``'s share: every ``world_size``-th batch, equal counts on all ranks."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside [0, {world_size})")
    usable = len(batches) - len(batches) % world_size
    return list(batches[rank:usable:world_size])
