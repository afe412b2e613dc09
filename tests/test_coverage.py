"""Vocabulary coverage: [UNK] counts agree with what the tokenizer really produces."""

from __future__ import annotations

from molw2s.encoders.coverage import coverage_lines, vocabulary_coverage
from molw2s.encoders.tokenizer import build_vocab, encode_smiles, make_tokenizer, save_tokenizer


def test_counts_match_the_tokenizer_and_name_the_missing_tokens(tmp_path) -> None:
    tokenizer = make_tokenizer(build_vocab(["CCO", "c1ccccc1N", "CC(=O)O"]).token_to_id)
    smiles = ["CCO", "C[N+](C)(C)C", "[O-]C(=O)c1ccccc1", "CCCl", "c1ccccc1N"]
    coverage = vocabulary_coverage(tokenizer, smiles)
    assert coverage.n_unk == encode_smiles(tokenizer, smiles, max_length=64).n_unk == 3
    assert coverage.unknown == {"Cl": 1, "[N+]": 1, "[O-]": 1}
    assert coverage.n_molecules_with_unk == 3 and coverage.n_molecules == 5
    n_tokens = sum(len(ids) - 2 for ids in encode_smiles(tokenizer, smiles, max_length=64).ids)
    assert coverage.n_tokens == n_tokens and coverage.unk_rate == 3 / n_tokens
    assert "3 of 5 molecules have at least one; most frequent: Cl x1, [N+] x1, [O-] x1" in coverage.line("t")

    for name in ("a", "b"):
        save_tokenizer(tokenizer, tmp_path / name)
    save_tokenizer(make_tokenizer(build_vocab(smiles).token_to_id), tmp_path / "c")
    lines = coverage_lines("t", smiles, {n: tmp_path / n for n in "abc"})
    assert lines[0].startswith("t under the vocabulary of a, b: ")
    assert lines[1].startswith("t under the vocabulary of c: 0.00% [UNK] tokens (0 of ")
