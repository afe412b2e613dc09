"""The batches of a member's training, step by step, built in worker processes if asked.

The batch of update ``step`` on ``rank`` is a pure function of ``(seed, step, rank)``: its
rows come from the length-bucketed order of ``step``'s epoch (:class:`BatchOrder`), and
its randomised SMILES and BERT masks from generators seeded by :func:`step_seed`. So
batches can be built anywhere, in any process, ahead of time: ``data_workers`` processes
of a ``torch.utils.data.DataLoader`` build them while the model trains (order kept,
pinned memory on CUDA, prefetched), and a resumed run starts the stream at its step and
sees the very batches the uninterrupted run saw. The workers also cut the batch into its
micro-batches, pack them if asked (:class:`StepLayout`) and find the labelled positions,
so the training loop only copies tensors to the device.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from molw2s.encoders.device import available_cpus
from molw2s.encoders.model import labelled_positions
from molw2s.encoders.packing import pack_layout
from molw2s.encoders.padding import pad_batch
from molw2s.encoders.tokenizer import IGNORE_INDEX, SPECIAL_TOKENS, encode_smiles
from molw2s.pretraining.batches import bucketed_batches, shard_batches
from molw2s.pretraining.config import TrainConfig
from molw2s.pretraining.corpus import PretrainingData
from molw2s.pretraining.masking import mask_tokens

#: batches each worker builds ahead of the training loop
PREFETCH_PER_WORKER = 4


@dataclass
class Batch:
    """Model inputs of one step (or one micro-batch of it), padded or packed.

    Padded: ``(molecules, longest)`` tensors, ``attention_mask`` 1 on real tokens. Packed
    (:mod:`molw2s.encoders.packing`): ``(rows, capacity)`` tensors, ``attention_mask`` the
    segment ids, with ``position_ids`` and each molecule's ``starts``. Either way
    ``mlm_positions`` holds the flat indices of the labelled positions, found on the host.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    physchem: torch.Tensor | None
    mlm_positions: torch.Tensor
    n_molecules: int
    n_tokens: int
    n_unk: int
    n_overlong: int
    position_ids: torch.Tensor | None = None
    starts: torch.Tensor | None = None

    @property
    def n_masked(self) -> int:
        """Labelled (masked) positions."""
        return len(self.mlm_positions)

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments of ``MolBertForPretraining.forward``."""
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "labels": self.labels,
            "physchem_targets": self.physchem,
            "position_ids": self.position_ids,
            "starts": self.starts,
            "mlm_positions": self.mlm_positions,
        }

    def to(self, device: torch.device) -> Batch:
        """A copy on ``device`` (asynchronous from pinned memory)."""
        return self._map(lambda t: t.to(device, non_blocking=True))

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory (what ``DataLoader(pin_memory=True)`` calls)."""
        return self._map(lambda t: t.pin_memory())

    def chunks(self, k: int, *, pad_multiple: int = 1) -> list[Batch]:
        """``k`` padded micro-batches of molecules of similar length: the molecules sorted by
        their real length, cut into ``k`` runs, each padded only to its own longest (rounded
        up to ``pad_multiple``); counters stay with the first."""
        if self.starts is not None:
            raise ValueError("chunk a padded batch, then pack the chunks")
        lengths = self.attention_mask.sum(1)
        order = torch.argsort(lengths, stable=True)
        tensors = [t[order] for t in (self.input_ids, self.attention_mask, self.labels)]
        parts = [torch.tensor_split(t, k) for t in tensors]
        physchem = [None] * k if self.physchem is None else list(torch.tensor_split(self.physchem[order], k))
        widths = [-(-int(part.max()) // pad_multiple) * pad_multiple for part in torch.tensor_split(lengths[order], k)]
        return [
            padded_batch(
                ids[:, :width],
                mask[:, :width],
                labels[:, :width],
                pc,
                self.n_unk if i == 0 else 0,
                self.n_overlong if i == 0 else 0,
            )
            for i, (ids, mask, labels, pc, width) in enumerate(zip(*parts, physchem, widths))
        ]

    def packed(self, capacity: int, *, pad_id: int, rows_multiple_of: int = 1) -> Batch:
        """The same molecules, tokens and masks as packed rows of ``capacity`` positions."""
        layout = pack_layout(self.attention_mask, capacity, rows_multiple_of=rows_multiple_of)
        labels = layout.pack(self.labels, IGNORE_INDEX)
        return Batch(
            input_ids=layout.pack(self.input_ids, pad_id),
            attention_mask=layout.segments,
            labels=labels,
            physchem=self.physchem,
            mlm_positions=labelled_positions(labels),
            n_molecules=self.n_molecules,
            n_tokens=self.n_tokens,
            n_unk=self.n_unk,
            n_overlong=self.n_overlong,
            position_ids=layout.position_ids,
            starts=layout.starts,
        )

    def _map(self, apply: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        def optional(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else apply(t)

        return replace(
            self,
            input_ids=apply(self.input_ids),
            attention_mask=apply(self.attention_mask),
            labels=apply(self.labels),
            physchem=optional(self.physchem),
            mlm_positions=apply(self.mlm_positions),
            position_ids=optional(self.position_ids),
            starts=optional(self.starts),
        )


def padded_batch(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    physchem: torch.Tensor | None,
    n_unk: int,
    n_overlong: int,
) -> Batch:
    """A padded :class:`Batch` with its labelled positions and counts."""
    return Batch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        labels=labels,
        physchem=physchem,
        mlm_positions=labelled_positions(labels),
        n_molecules=len(input_ids),
        n_tokens=int(attention_mask.sum()),
        n_unk=n_unk,
        n_overlong=n_overlong,
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
    return padded_batch(masked, attention, labels, physchem, n_unk, n_overlong)


@dataclass(frozen=True)
class StepLayout:
    """How a step's batch is laid out: padding to a multiple, micro-batches, packing."""

    pad_multiple: int = 1
    micro_batches: int = 1
    packing: int | None = None  # row width of packed micro-batches; None: padded

    @classmethod
    def for_training(cls, train: TrainConfig, device: torch.device) -> StepLayout:
        """The layout a member trains with: ``train``'s micro-batches and packing, widths
        padded to a multiple of 8 on CUDA (tensor cores). Packed rows are not rounded to a
        count: the model is compiled with dynamic shapes, and empty rows would be padding."""
        pad = 8 if device.type == "cuda" else 1
        return cls(pad_multiple=pad, micro_batches=train.micro_batches, packing=train.packing)

    def split(self, batch: Batch, pad_id: int) -> list[Batch]:
        """``batch`` as the step's micro-batches (molecules of similar length), each packed if asked."""
        k = min(self.micro_batches, batch.n_molecules)
        parts = batch.chunks(k, pad_multiple=self.pad_multiple) if k > 1 else [batch]
        if self.packing is None:
            return parts
        return [p.packed(self.packing, pad_id=pad_id) for p in parts]


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


class StepBatches(torch.utils.data.Dataset[list[Batch]]):
    """The micro-batches of update ``step`` as item ``step`` (what the DataLoader's workers build)."""

    def __init__(self, data: PretrainingData, order: BatchOrder, *, seed: int, layout: StepLayout) -> None:
        self.data, self.order, self.seed, self.layout = data, order, seed, layout

    def __getitem__(self, step: int) -> list[Batch]:
        seed = step_seed(self.seed, step, self.order.rank)
        rows = self.order.rows_for(step)
        batch = make_batch(self.data, rows, seed=seed, pad_multiple=self.layout.pad_multiple)
        return self.layout.split(batch, self.data.tokenizer.pad_token_id)


def batch_stream(
    batches: StepBatches, *, start: int, stop: int, workers: int, pin_memory: bool = False
) -> Iterator[list[Batch]]:
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
        multiprocessing_context=worker_context(),
        collate_fn=_as_is,
        # its own generator for the workers' base seed: drawing it from torch's global RNG
        # would shift the dropout masks of the training loop
        generator=torch.Generator().manual_seed(0),
    )
    yield from loader


def _as_is(item: Any) -> Any:
    """With ``batch_size=None`` the collate function gets each item alone: keep it as built."""
    return item


def worker_context() -> multiprocessing.context.BaseContext:
    """How the batch workers start, whatever this process's default (a member process of
    ``parallel_members`` is spawned, and its default is spawn too, which would re-import
    torch, transformers and RDKit in every worker and pickle the step data to each).

    ``fork`` while this process has not initialised CUDA: the workers inherit the imports
    and the prepared data (copy-on-write) at once. Once it has (a CUDA member's model is on
    the GPU before its first batch), forking would copy a CUDA context into the workers,
    which CUDA does not support; then ``forkserver``: a clean server process, which never
    touches CUDA, imports this module (torch, transformers, RDKit) once and forks each
    worker from itself, so only the step data is pickled per worker. Where fork does not
    exist (Windows) the platform's default.
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" not in methods:
        return multiprocessing.get_context()
    if not torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "molw2s.chem.randomize"])
    return context


def default_workers(device: torch.device) -> int:
    """Batch-building processes when ``data_workers`` is unset: none on CPU (the model needs
    the cores), on CUDA one per spare core (:func:`available_cpus`) up to 8."""
    if device.type != "cuda":
        return 0
    return max(0, min(8, available_cpus() - 1))
