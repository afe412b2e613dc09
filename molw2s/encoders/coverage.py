"""How well a tokenizer's vocabulary covers a set of SMILES: the [UNK] rate a task's
molecules get under a pretrained family (the family's corpus may lack charged atoms or
stereo tokens the task has)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from molw2s.encoders.tokenizer import model_input_smiles

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


@dataclass(frozen=True)
class VocabularyCoverage:
    """Token counts of some SMILES under one vocabulary."""

    n_molecules: int
    n_tokens: int  # atom-level tokens, special tokens excluded
    n_unk: int  # of which map to [UNK]
    n_molecules_with_unk: int
    unknown: dict[str, int]  # token -> occurrences, most frequent first

    @property
    def unk_rate(self) -> float:
        """[UNK] tokens / tokens (0 for no tokens)."""
        return self.n_unk / self.n_tokens if self.n_tokens else 0.0

    def line(self, what: str, max_tokens: int = 5) -> str:
        """One report line, e.g. ``ESOL under strong: 0.41% [UNK] tokens (12 of 1128 molecules); top: [N+] x8``."""
        top = ", ".join(f"{t} x{c}" for t, c in list(self.unknown.items())[:max_tokens])
        return (
            f"{what}: {100 * self.unk_rate:.2f}% [UNK] tokens ({self.n_unk} of {self.n_tokens}); "
            f"{self.n_molecules_with_unk} of {self.n_molecules} molecules have at least one"
            + (f"; most frequent: {top}" if top else "")
        )


def vocabulary_coverage(tokenizer: PreTrainedTokenizerFast, smiles: Sequence[str]) -> VocabularyCoverage:
    """Count the tokens of ``smiles`` (split and spelled as ``tokenizer``'s model reads them)
    that its vocabulary lacks."""
    vocab = tokenizer.get_vocab()
    split = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str
    unknown: Counter[str] = Counter()
    n_tokens = with_unk = 0
    for text in model_input_smiles(tokenizer, smiles):
        tokens = [piece for piece, _ in split(text)]
        n_tokens += len(tokens)
        missing = [t for t in tokens if t not in vocab]
        unknown.update(missing)
        with_unk += bool(missing)
    ordered = dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0])))
    return VocabularyCoverage(len(smiles), n_tokens, sum(unknown.values()), with_unk, ordered)


def coverage_lines(task_name: str, smiles: Sequence[str], models: dict[str, Path]) -> list[str]:
    """One :meth:`VocabularyCoverage.line` per distinct vocabulary among ``models`` (name ->
    model directory); models sharing a ``tokenizer.json`` (a family) share a line."""
    from molw2s.encoders.tokenizer import load_tokenizer
    from molw2s.io import file_digest

    groups: dict[str, tuple[Path, list[str]]] = {}
    for name, directory in models.items():
        digest = file_digest(directory / "tokenizer.json", "sha256")
        groups.setdefault(digest, (directory, []))[1].append(name)
    lines = []
    for directory, names in groups.values():
        coverage = vocabulary_coverage(load_tokenizer(directory), smiles)
        lines.append(coverage.line(f"{task_name} under the vocabulary of {', '.join(names)}"))
    return lines
