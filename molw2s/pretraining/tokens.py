"""The corpus's token counts (for the vocabulary, in worker processes for large corpora) and
token ids, chunk by chunk with progress bars.

The result never depends on the number of processes. The vocabulary counts the training
SMILES plus one randomised SMILES of each (with augmentation on); the random atom orders
are drawn in the parent, in corpus order, from ``default_rng([seed, 2])`` (the draws of
``randomize_mol`` one molecule after another, so the vocabulary is the one a serial loop
builds), and the workers only parse, renumber, write and count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from molw2s.chem.chunks import chunks, map_chunks
from molw2s.encoders.tokenizer import EncodedBatch, count_tokens, encode_smiles, tokenize_smiles

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

#: molecules per work unit, and the corpus size from which worker processes pay off
CHUNK = 4096
PARALLEL_FROM = 20_000
#: the organic-subset atom symbols of SMILES (every other atom is a bracket atom or ``*``)
_ORGANIC_ATOMS = frozenset(["B", "C", "N", "O", "P", "S", "F", "Cl", "Br", "I", "b", "c", "n", "o", "p", "s"])


def atom_count(smiles: str) -> int:
    """Atoms written in ``smiles``: bracket atoms, organic-subset symbols and ``*`` (the
    atom count RDKit's parser gives a canonical SMILES; checked again when renumbering)."""
    return sum(1 for t in tokenize_smiles(smiles) if t[0] == "[" or t == "*" or t in _ORGANIC_ATOMS)


def vocabulary_counts(
    smiles: Sequence[str], *, augment: bool, seed: int, n_jobs: int, progress: bool = False
) -> Counter[str]:
    """Token counts over ``smiles`` and, when ``augment``, one randomised SMILES of each."""
    rng = np.random.default_rng([seed, 2])

    def work() -> Iterator[tuple[Any, ...]]:
        for chunk in chunks(smiles, CHUNK):
            orders = [rng.permutation(atom_count(s)) for s in chunk] if augment else None
            yield chunk, orders

    total: Counter[str] = Counter()
    counted = map_chunks(
        _count_chunk,
        work(),
        n=len(smiles),
        n_jobs=n_jobs,
        parallel_from=PARALLEL_FROM,
        progress=progress,
        desc="vocabulary",
    )
    for counts in counted:
        total.update(counts)
    return total


def encode_corpus(
    tokenizer: PreTrainedTokenizerFast, smiles: Sequence[str], *, max_length: int, progress: bool = False
) -> EncodedBatch:
    """:func:`~molw2s.encoders.tokenizer.encode_smiles` of ``smiles``, chunk by chunk with a
    progress bar, in this process (the fast tokenizer encodes on all cores already; worker
    processes were measured no faster, their ids coming back through pickles)."""
    ids: list[list[int]] = []
    truncated: list[int] = []
    n_unk = 0
    work = ((chunk, tokenizer, max_length) for chunk in chunks(smiles, CHUNK))
    encoded = map_chunks(
        _encode_chunk, work, n=len(smiles), n_jobs=1, parallel_from=PARALLEL_FROM, progress=progress, desc="tokenising"
    )
    for part in encoded:
        truncated += [len(ids) + i for i in part.truncated]
        ids += part.ids
        n_unk += part.n_unk
    return EncodedBatch(ids=ids, n_unk=n_unk, truncated=truncated)


def _count_chunk(chunk: list[str], orders: list[np.ndarray] | None) -> Counter[str]:
    """Token counts of ``chunk`` plus, with ``orders``, of each molecule renumbered by its order."""
    from molw2s.chem.randomize import parse_or_raise, renumbered_smiles

    counts = count_tokens(chunk)
    if orders is not None:
        counts.update(count_tokens(renumbered_smiles(parse_or_raise(s), order) for s, order in zip(chunk, orders)))
    return counts


def _encode_chunk(chunk: list[str], tokenizer: PreTrainedTokenizerFast, max_length: int) -> EncodedBatch:
    return encode_smiles(tokenizer, chunk, max_length=max_length)
