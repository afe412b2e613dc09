"""Pretraining data of a family: corpus, held-out split, vocabulary, descriptor targets.

Everything here is a deterministic function of the :class:`PretrainingDataConfig` (and the corpus
file), so every member of a family sees the same split, vocabulary, normalisation and
held-out masks. Descriptors, the one expensive part, are cached on disk by content hash.
Problems are counted and reported in :class:`DataReport`, never dropped silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from molw2s.chem.descriptors import compute_descriptors, descriptor_names
from molw2s.data.prepare import load_corpus_spec
from molw2s.encoders.device import available_cpus
from molw2s.encoders.physchem import PhysChemStats, fit_physchem_stats, normalize_physchem
from molw2s.encoders.tokenizer import SPECIAL_TOKENS, make_tokenizer, vocab_from_counts
from molw2s.errors import DataError
from molw2s.io import cache_dir, content_hash, load_npy_checked, save_npy_checked
from molw2s.pretraining.config import PretrainingDataConfig
from molw2s.pretraining.tokens import encode_corpus, vocabulary_counts

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

log = logging.getLogger(__name__)

#: seed of the held-out masks (the same for every member, so accuracies are comparable)
VAL_MASK_SEED = 20250213


@dataclass
class TokenizedSplit:
    """Molecules of one split with their token ids and (normalised) descriptor targets."""

    smiles: list[str]
    ids: list[list[int]]  # [CLS] ... [SEP], truncated to max_length
    physchem: np.ndarray | None  # (n, n_descriptors) float32, or None without the head

    @property
    def lengths(self) -> np.ndarray:
        """Ids per sequence (for length bucketing)."""
        return np.fromiter((len(s) for s in self.ids), dtype=np.int64, count=len(self.ids))


@dataclass
class DataReport:
    """What was read, kept, truncated or excluded, and why."""

    corpus: str
    n_corpus: int
    n_invalid: int
    n_train: int
    n_val: int
    vocab_size: int
    dropped_tokens: dict[str, int]
    overlong_policy: str
    n_overlong: int
    n_unk: int
    n_mixed: int = 0  # task molecules added to the training split (mix_tasks)
    descriptors_kept: int = 0
    descriptors_dropped: list[str] = field(default_factory=list)
    descriptors_repaired: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Human-readable summary."""
        verb = "truncated" if self.overlong_policy == "truncate" else "excluded"
        out = [
            f"corpus {self.corpus}: {self.n_corpus} molecules used, {self.n_invalid} invalid SMILES skipped",
            f"split: {self.n_train} train / {self.n_val} held-out molecules"
            + (f" (the training split includes {self.n_mixed} task molecules, mix_tasks)" if self.n_mixed else ""),
            f"vocabulary: {self.vocab_size} tokens; {len(self.dropped_tokens)} rare token types -> [UNK]",
            f"over-long SMILES {verb}: {self.n_overlong}; [UNK] tokens in the corpus: {self.n_unk}",
        ]
        if self.descriptors_kept:
            out.append(
                f"PhysChem targets: {self.descriptors_kept} descriptors "
                f"({len(self.descriptors_dropped)} constant ones dropped, "
                f"{sum(self.descriptors_repaired.values())} non-finite values imputed)"
            )
        return out


@dataclass
class PretrainingData:
    """Everything a member's training loop needs, shared across the family."""

    config: PretrainingDataConfig
    tokenizer: PreTrainedTokenizerFast
    train: TokenizedSplit
    val: TokenizedSplit
    val_masked_ids: list[list[int]]  # held-out inputs with BERT masking applied (fixed seed)
    val_labels: list[list[int]]  # -100 where not masked
    physchem_stats: PhysChemStats | None
    token_counts: np.ndarray  # occurrences of each id over the training split (specials 0)
    report: DataReport
    fingerprint: str  # content hash of the corpus SMILES and the config


def prepare_pretraining_data(
    config: PretrainingDataConfig, *, data_dir: str | Path | None = None, progress: bool = True
) -> PretrainingData:
    """Load the corpus, split it, build the vocabulary and the descriptor targets."""
    jobs = preparation_jobs(config)
    corpus = load_corpus_spec(config.corpus, data_dir=data_dir, progress=progress, n_jobs=jobs)
    if corpus.n_skipped:
        log.warning(corpus.report())
    train_smiles, val_smiles = split_corpus(corpus.smiles, config)
    mixed = mixed_task_smiles(config, set(corpus.smiles), data_dir=data_dir)
    train_smiles += mixed
    vocab_counts = vocabulary_counts(
        train_smiles, augment=config.augment, seed=config.corpus.seed, n_jobs=jobs, progress=progress
    )
    vocab = vocab_from_counts(vocab_counts, min_freq=config.min_freq)
    tokenizer = make_tokenizer(vocab.token_to_id, max_length=config.max_length)

    train_ids, train_keep, n_unk_train, n_long_train = _encode_split(tokenizer, train_smiles, config, progress)
    val_ids, val_keep, n_unk_val, n_long_val = _encode_split(tokenizer, val_smiles, config, False)
    train_smiles = [train_smiles[i] for i in train_keep]
    val_smiles = [val_smiles[i] for i in val_keep]
    if not train_smiles or not val_smiles:
        raise DataError(f"corpus {corpus.name}: no molecules left in the train or held-out split", path=corpus.source)

    report = DataReport(
        corpus=corpus.name,
        n_corpus=len(corpus.smiles),
        n_invalid=corpus.n_skipped,
        n_train=len(train_smiles),
        n_mixed=len(mixed),
        n_val=len(val_smiles),
        vocab_size=len(vocab),
        dropped_tokens=vocab.dropped,
        overlong_policy=config.overlong,
        n_overlong=n_long_train + n_long_val,
        n_unk=n_unk_train + n_unk_val,
    )
    stats, train_pc, val_pc = None, None, None
    if config.physchem:
        stats, train_pc, val_pc = _physchem_targets(train_smiles, val_smiles, config, report, progress)

    val_masked, val_labels = mask_held_out(val_ids, tokenizer, config.mask_prob)
    counts = np.bincount(np.concatenate([np.asarray(s) for s in train_ids]), minlength=len(vocab))
    counts[: len(SPECIAL_TOKENS)] = 0
    return PretrainingData(
        config=config,
        tokenizer=tokenizer,
        train=TokenizedSplit(train_smiles, train_ids, train_pc),
        val=TokenizedSplit(val_smiles, val_ids, val_pc),
        val_masked_ids=val_masked,
        val_labels=val_labels,
        physchem_stats=stats,
        token_counts=counts,
        report=report,
        fingerprint=_fingerprint(config, corpus.smiles, mixed),
    )


def _fingerprint(config: PretrainingDataConfig, corpus: list[str], mixed: list[str]) -> str:
    """Content hash of the data; ``mix_tasks`` enters it only when it adds molecules, so
    families without it keep the fingerprint (and finished members) they had before it existed."""
    if not mixed:
        return content_hash(config.model_dump(exclude={"mix_tasks"}), corpus)
    return content_hash(config.model_dump(), corpus, mixed)


def mixed_task_smiles(
    config: PretrainingDataConfig, corpus: set[str], *, data_dir: str | Path | None = None
) -> list[str]:
    """Canonical SMILES of the ``mix_tasks`` molecules not in the corpus yet (sorted,
    deduplicated): they are added to the training split only."""
    from molw2s.data.prepare import load_task_spec

    found: set[str] = set()
    for spec in config.mix_tasks:
        found.update(load_task_spec(spec, data_dir=data_dir).smiles)
    return sorted(found - corpus)


def default_jobs() -> int:
    """Processes for corpus preparation when ``descriptor_jobs`` is unset: up to 4."""
    return min(4, available_cpus())


def preparation_jobs(config: PretrainingDataConfig) -> int:
    """Processes for parsing, counting and tokenising the corpus and computing its descriptors."""
    return config.descriptor_jobs or default_jobs()


def split_corpus(smiles: list[str], config: PretrainingDataConfig) -> tuple[list[str], list[str]]:
    """Seeded train / held-out split: ``val_fraction`` of the corpus, at most ``max_val``."""
    n_val = max(1, round(config.val_fraction * len(smiles)))
    if config.max_val is not None:
        n_val = min(n_val, config.max_val)
    if n_val >= len(smiles):
        raise DataError(f"a corpus of {len(smiles)} molecules is too small to hold out {n_val}")
    perm = np.random.default_rng([config.corpus.seed, 1]).permutation(len(smiles))
    val = np.sort(perm[:n_val])
    train = np.sort(perm[n_val:])
    return [smiles[i] for i in train], [smiles[i] for i in val]


def mask_held_out(
    ids: list[list[int]], tokenizer: PreTrainedTokenizerFast, mask_prob: float
) -> tuple[list[list[int]], list[list[int]]]:
    """Apply BERT masking to each held-out sequence once, with :data:`VAL_MASK_SEED`."""
    import torch

    from molw2s.pretraining.masking import mask_tokens

    generator = torch.Generator().manual_seed(VAL_MASK_SEED)
    masked_all, labels_all = [], []
    for seq in ids:
        tensor = torch.as_tensor(seq)
        masked, labels = mask_tokens(
            tensor,
            mask_token_id=tokenizer.mask_token_id,
            n_special=len(SPECIAL_TOKENS),
            vocab_size=len(tokenizer),
            generator=generator,
            mask_prob=mask_prob,
        )
        masked_all.append(masked.tolist())
        labels_all.append(labels.tolist())
    return masked_all, labels_all


def _encode_split(
    tokenizer: PreTrainedTokenizerFast, smiles: list[str], config: PretrainingDataConfig, progress: bool
) -> tuple[list[list[int]], list[int], int, int]:
    """(ids of kept molecules, kept positions, [UNK] count, over-long count)."""
    encoded = encode_corpus(tokenizer, smiles, max_length=config.max_length, progress=progress)
    if config.overlong == "exclude":
        drop = set(encoded.truncated)
        keep = [i for i in range(len(smiles)) if i not in drop]
    else:
        keep = list(range(len(smiles)))
    return [encoded.ids[i] for i in keep], keep, encoded.n_unk, len(encoded.truncated)


def _physchem_targets(
    train_smiles: list[str], val_smiles: list[str], config: PretrainingDataConfig, report: DataReport, progress: bool
) -> tuple[PhysChemStats, np.ndarray, np.ndarray]:
    """Normalised descriptors (stats fitted on the training split)."""
    values, names, repaired = cached_descriptors(
        train_smiles + val_smiles, n_jobs=config.descriptor_jobs, progress=progress
    )
    n_train = len(train_smiles)
    stats = fit_physchem_stats(values[:n_train], names, clip=config.physchem_clip)
    report.descriptors_kept = len(stats.names)
    report.descriptors_dropped = [n for n in names if n not in set(stats.names)]
    report.descriptors_repaired = repaired
    targets = normalize_physchem(values, names, stats)
    return stats, targets[:n_train], targets[n_train:]


def cached_descriptors(
    smiles: list[str], *, n_jobs: int | None = None, progress: bool = True
) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """RDKit descriptors of ``smiles`` (float32), cached under ``cache_dir()/descriptors``
    (checked on read: a corrupt cache is moved aside and recomputed)."""
    import rdkit

    names = descriptor_names()
    key = content_hash("rdkit-descriptors", rdkit.__version__, names, smiles)
    path = cache_dir() / "descriptors" / f"{key}.npy"
    cached = load_npy_checked(path)
    if cached is not None:
        return cached[0], names, cached[1]["n_nonfinite"]
    jobs = n_jobs or default_jobs()
    table = compute_descriptors(smiles, progress=progress, n_jobs=jobs)
    if table.failed_rows:  # the corpus loader already dropped unparsable SMILES: these timed out
        raise DataError(
            f"descriptors failed or exceeded the time limit for {len(table.failed_rows)} molecules, "
            f"e.g. {smiles[table.failed_rows[0]][:60]!r}; lower data.corpus.max_heavy_atoms to exclude such molecules"
        )
    save_npy_checked(path, table.values, {"n_nonfinite": table.n_nonfinite, "names": names})
    return table.values, names, table.n_nonfinite
