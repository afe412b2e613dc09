"""The batches of a member's training, step by step, built in worker processes if asked.

The batch of update ``step`` on ``rank`` is a pure function of ``(seed, step, rank)``: its
rows come from the length-bucketed order of ``step``'s epoch (:class:`BatchOrder`), and
its randomised SMILES and BERT masks from generators seeded by :func:`step_seed`. So
batches can be built anywhere, in any process, ahead of time: ``data_workers`` processes
of a ``torch.utils.data.DataLoader`` build them while the model trains (order kept,
pinned memory on CUDA, prefetched), and a resumed run starts the stream at its step and
sees the very batches the uninterrupted run saw.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from molw2s.encoders.padding import pad_batch
from molw2s.encoders.tokenizer import SPECIAL_TOKENS, encode_smiles
from molw2s.pretraining.batches import bucketed_batches, shard_batches
from molw2s.pretraining.corpus import PretrainingData
from molw2s.pretraining.masking import mask_tokens

#: batches each worker builds ahead of the training loop
PREFETCH_PER_WORKER = 4


@dataclass
class Batch:
    """Model inputs of one step."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    physchem: torch.Tensor | None
    n_unk: int
    n_overlong: int

    def to(self, device: torch.device) -> Batch:
        """A copy on ``device`` (asynchronous from pinned memory)."""
        return self._map(lambda t: t.to(device, non_blocking=True))

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory (what ``DataLoader(pin_memory=True)`` calls)."""
        return self._map(lambda t: t.pin_memory())

    def chunks(self, k: int) -> list[Batch]:
        """``k`` micro-batches of consecutive molecules (counters stay with the first)."""
        parts = [torch.tensor_split(t, k) for t in (self.input_ids, self.attention_mask, self.labels)]
        physchem = [None] * k if self.physchem is None else list(torch.tensor_split(self.physchem, k))
        return [
            Batch(ids, mask, labels, pc, self.n_unk if i == 0 else 0, self.n_overlong if i == 0 else 0)
            for i, (ids, mask, labels, pc) in enumerate(zip(*parts, physchem))
        ]

    def _map(self, apply: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        return Batch(
            apply(self.input_ids),
            apply(self.attention_mask),
            apply(self.labels),
            None if self.physchem is None else apply(self.physchem),
            self.n_unk,
            self.n_overlong,
        )


def step_seed(seed: int, step: int, rank: int) -> int:
    """A 63-bit seed for the data-side randomness of one step on one rank."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def make_batch(data: PretrainingData, rows: np.ndarray, *, seed: int, pad_multiple: int = 1) -> Batch:
    """Tokens (randomised SMILES when augmenting), BERT masks and targets for ``rows``."""
    cfg = data.config
    tok = data.tokenizer
    n_unk, n_overlong = 0, 0
    if cfg.augment:
        from molw2s.chem.randomize import randomized_smiles

        rng = np.random.default_rng(seed)
        encoded = encode_smiles(
            tok, [randomized_smiles(data.train.smiles[i], rng) for i in rows], max_length=cfg.max_length
        )
        ids, n_unk, n_overlong = encoded.ids, encoded.n_unk, len(encoded.truncated)
        if cfg.overlong == "exclude":  # fall back to the canonical form, which fits
            for pos in encoded.truncated:
                ids[pos] = data.train.ids[rows[pos]]
    else:
        ids = [data.train.ids[i] for i in rows]
    input_ids, attention = pad_batch(ids, tok.pad_token_id, multiple_of=pad_multiple)
    masked, labels = mask_tokens(
        input_ids,
        mask_token_id=tok.mask_token_id,
        n_special=len(SPECIAL_TOKENS),
        vocab_size=len(tok),
        generator=torch.Generator().manual_seed(seed),
        mask_prob=cfg.mask_prob,
    )
    physchem = None if data.train.physchem is None else torch.from_numpy(data.train.physchem[rows])
    return Batch(masked, attention, labels, physchem, n_unk, n_overlong)


class BatchOrder:
    """Which training rows form this rank's batch of each step (epochs rebuilt on demand)."""

    def __init__(
        self, lengths: np.ndarray, batch_size: int, *, seed: int, bucket_batches: int, rank: int, world_size: int
    ) -> None:
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.bucket_batches, self.rank, self.world_size = bucket_batches, rank, world_size
        self._epoch, self._batches = 0, self._epoch_batches(0)

    @property
    def steps_per_epoch(self) -> int:
        """Batches per epoch on this rank."""
        return len(self._batches)

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        batches = bucketed_batches(
            self.lengths, self.batch_size, seed=self.seed, epoch=epoch, bucket_batches=self.bucket_batches
        )
        return shard_batches(batches, self.rank, self.world_size)

    def rows_for(self, step: int) -> np.ndarray:
        """This rank's batch (dataset rows) for update ``step``."""
        epoch, pos = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._batches = epoch, self._epoch_batches(epoch)
        return self._batches[pos]


class StepBatches(torch.utils.data.Dataset[Batch]):
    """The batch of update ``step`` as item ``step`` (what the DataLoader's workers build)."""

    def __init__(self, data: PretrainingData, order: BatchOrder, *, seed: int, pad_multiple: int) -> None:
        self.data, self.order, self.seed, self.pad_multiple = data, order, seed, pad_multiple

    def __getitem__(self, step: int) -> Batch:
        seed = step_seed(self.seed, step, self.order.rank)
        return make_batch(self.data, self.order.rows_for(step), seed=seed, pad_multiple=self.pad_multiple)


def batch_stream(
    batches: StepBatches, *, start: int, stop: int, workers: int, pin_memory: bool = False
) -> Iterator[Batch]:
    """The batches of steps ``start .. stop - 1`` in order: built here (``workers=0``) or by
    ``workers`` processes ahead of time."""
    if workers == 0:
        yield from (batches[step] for step in range(start, stop))
        return
    # the fast tokenizer's own threads do not survive fork; the workers are the parallelism
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    loader = torch.utils.data.DataLoader(
        batches,
        batch_size=None,  # items are whole batches
        sampler=range(start, stop),
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=PREFETCH_PER_WORKER,
        collate_fn=_as_is,
        # its own generator for the workers' base seed: drawing it from torch's global RNG
        # would shift the dropout masks of the training loop
        generator=torch.Generator().manual_seed(0),
    )
    yield from loader


def _as_is(item: Any) -> Any:
    """With ``batch_size=None`` the collate function gets each item alone: keep it as built."""
    return item


def default_workers(device: torch.device) -> int:
    """Batch-building processes when ``data_workers`` is unset: none on CPU (the model needs
    the cores), on CUDA one per spare core up to 8."""
    if device.type != "cuda":
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))
