"""Corpus token counts and ids in worker processes: the same vocabulary and ids as the
serial loop they replace, whatever the number of processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from molw2s.chem.randomize import parse_or_raise, randomized_smiles
from molw2s.data.config import CorpusSpec, TaskSpec
from molw2s.data.prepare import load_corpus_spec, load_task_spec
from molw2s.encoders.tokenizer import build_vocab, encode_smiles, make_tokenizer, vocab_from_counts
from molw2s.errors import DataError
from molw2s.pretraining import tokens
from molw2s.pretraining.tokens import atom_count, encode_corpus, vocabulary_counts


@pytest.fixture(scope="module")
def nci_smiles() -> list[str]:
    return load_corpus_spec(CorpusSpec(name="nci5k", n=1500)).smiles


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes from the first molecule, in chunks of 100."""
    monkeypatch.setattr(tokens, "PARALLEL_FROM", 0)
    monkeypatch.setattr(tokens, "CHUNK", 100)


def test_atom_count_is_rdkits(nci_smiles: list[str], moleculenet_dir: Path) -> None:
    """Charged, bracketed, isotopic, stereo and wildcard atoms all count once."""
    extra = ["[2H]C([2H])([2H])O", "[H][H]", "*c1ccccc1", "C[N+](C)(C)C.[Cl-]", "F[C@H](Cl)Br", "[nH]1cccc1"]
    tasks = [load_task_spec(TaskSpec(name=t), data_dir=moleculenet_dir).smiles for t in ("ESOL", "FreeSolv", "Lipop")]
    for smiles in [*nci_smiles, *extra, *(s for task in tasks for s in task)]:
        assert atom_count(smiles) == parse_or_raise(smiles).GetNumAtoms(), smiles


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_vocabulary_is_the_serial_loops(nci_smiles: list[str], small_chunks: None, n_jobs: int) -> None:
    """The vocabulary of the training SMILES plus one randomised SMILES of each, drawn one
    after another from default_rng([seed, 2]) (what corpus preparation did serially)."""
    rng = np.random.default_rng([7, 2])
    serial = build_vocab(nci_smiles + [randomized_smiles(s, rng) for s in nci_smiles])
    counts = vocabulary_counts(nci_smiles, augment=True, seed=7, n_jobs=n_jobs)
    assert vocab_from_counts(counts) == serial
    plain = vocabulary_counts(nci_smiles, augment=False, seed=7, n_jobs=n_jobs)
    assert vocab_from_counts(plain) == build_vocab(nci_smiles)
    assert sum(counts.values()) > sum(plain.values())


def test_encoding_in_chunks_equals_one_call(nci_smiles: list[str], small_chunks: None) -> None:
    tokenizer = make_tokenizer(build_vocab(nci_smiles[:300]).token_to_id, max_length=40)
    whole = encode_smiles(tokenizer, nci_smiles, max_length=40)
    chunked = encode_corpus(tokenizer, nci_smiles, max_length=40)
    assert chunked == whole
    assert whole.truncated and whole.n_unk > 0  # offsets and counts were really merged


def test_a_renumbering_that_does_not_fit_the_molecule_is_an_error() -> None:
    from molw2s.chem.randomize import renumbered_smiles

    with pytest.raises(DataError, match="atom order of length 2 for a molecule of 3 atoms"):
        renumbered_smiles(parse_or_raise("CCO"), [1, 0])
    assert renumbered_smiles(parse_or_raise("CCO"), [2, 1, 0]) == "OCC"
