"""Parse SMILES with RDKit: canonical SMILES for the valid ones, a reason for each invalid one.

Row numbers are 0-based positions in the input sequence. Callers that read files give
``InvalidSmiles.line`` too (the 1-based line of the file), so messages say both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from molw2s.chem.chunks import chunks, map_chunks
from molw2s.chem.standardize import StandardizeOptions, standardize_mol
from molw2s.errors import DataError

if TYPE_CHECKING:
    from rdkit import Chem

#: default cap on heavy atoms per molecule: every ESOL / FreeSolv / Lipop molecule (at most
#: 115) passes, while the pathological inputs that stall descriptor computation (RDKit's
#: Ipc on a 1,000-atom chain takes about a minute) are excluded and reported
DEFAULT_MAX_HEAVY_ATOMS = 200

_TIMESTAMP = re.compile(r"^\[\d{2}:\d{2}:\d{2}\]\s*")
_POSITION = re.compile(r"check for mistakes around position (\d+)")


@dataclass(frozen=True)
class InvalidSmiles:
    """One SMILES that was excluded: its 0-based row, the text, RDKit's reason."""

    row: int
    smiles: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{row_label(self.row, self.line)}: {self.smiles!r}: {self.reason}"


@dataclass
class ParsedSmiles:
    """Canonical SMILES of the valid inputs, their input rows, and the invalid ones."""

    smiles: list[str]
    index: np.ndarray
    invalid: list[InvalidSmiles] = field(default_factory=list)
    n_input: int = 0
    source: str | None = None

    def report(self, max_examples: int = 5) -> str:
        """A short human-readable summary naming the invalid rows."""
        return format_invalid(self.invalid, self.n_input, self.source, max_examples)


def row_label(row: int, line: int | None = None) -> str:
    """``row 3`` or ``row 3 (line 5)``: how messages name a 0-based data row."""
    return f"row {row}" + (f" (line {line})" if line is not None else "")


def format_invalid(
    invalid: Sequence[InvalidSmiles], n_total: int, source: str | None = None, max_examples: int = 5
) -> str:
    """Summarise excluded SMILES: how many of how many, and the first ``max_examples``."""
    where = f"{source}: " if source else ""
    if not invalid:
        return f"{where}all {n_total} SMILES valid"
    lines = [f"{where}{len(invalid)} of {n_total} SMILES invalid (rows are 0-based):"]
    lines += [f"  {item}" for item in invalid[:max_examples]]
    if len(invalid) > max_examples:
        lines.append(f"  ... and {len(invalid) - max_examples} more")
    return "\n".join(lines)


def mol_from_smiles(smiles: object) -> tuple[Chem.Mol | None, str]:
    """Parse one SMILES; return ``(mol, "")`` or ``(None, reason)`` with RDKit's own words."""
    if not isinstance(smiles, str):
        return None, f"not a string (got {type(smiles).__name__})"
    text = smiles.strip()
    if not text:
        return None, "empty SMILES"
    mol, messages = _parse_capturing_log(text)
    if mol is None:
        return None, _reason_from_log(messages)
    return mol, ""


def canonicalize(smiles: str, standardize: StandardizeOptions | None = None) -> str | None:
    """Canonical SMILES of ``smiles`` (after optional standardisation), or None if invalid."""
    mol, _ = mol_from_smiles(smiles)
    if mol is None:
        return None
    return _to_smiles(mol, standardize)


def parse_smiles(
    smiles: Sequence[str],
    *,
    standardize: StandardizeOptions | None = None,
    strict: bool = False,
    source: str | None = None,
    progress: bool = False,
    max_heavy_atoms: int | None = None,
    n_jobs: int = 1,
) -> ParsedSmiles:
    """Parse and canonicalise ``smiles``; collect each invalid one with its row and reason.

    A molecule with more than ``max_heavy_atoms`` heavy atoms (when given) is excluded
    and listed like an invalid SMILES. With ``strict=True`` any invalid SMILES raises
    :class:`DataError` listing them. ``n_jobs`` > 1 parses chunks in worker processes
    (inputs of at least ``PARALLEL_PARSE_FROM`` SMILES); the result is the same.
    """
    items = list(smiles)
    settings = (standardize, max_heavy_atoms)
    kept: list[str] = []
    index: list[int] = []
    invalid: list[InvalidSmiles] = []
    parts = map_chunks(
        _parse_chunk,
        ((chunk, settings) for chunk in chunks(items, PARSE_CHUNK)),
        n=len(items),
        n_jobs=n_jobs,
        parallel_from=PARALLEL_PARSE_FROM,
        progress=progress,
        desc="parsing SMILES",
    )
    _merge(parts, kept, index, invalid)
    parsed = ParsedSmiles(kept, np.asarray(index, dtype=np.int64), invalid, len(items), source)
    if strict and invalid:
        raise DataError(f"strict mode: {parsed.report()}", path=source)
    return parsed


#: SMILES per work unit of :func:`parse_smiles`, and the input size from which workers pay off
PARSE_CHUNK = 4096
PARALLEL_PARSE_FROM = 20_000

_ChunkResult = tuple[int, list[str], list[int], list[InvalidSmiles]]


def _parse_chunk(chunk: list[str], settings: tuple[StandardizeOptions | None, int | None]) -> _ChunkResult:
    """(chunk size, canonical SMILES, their rows in the chunk, invalid ones with chunk rows)."""
    standardize, max_heavy_atoms = settings
    kept: list[str] = []
    index: list[int] = []
    invalid: list[InvalidSmiles] = []
    for row, text in enumerate(chunk):
        mol, reason = mol_from_smiles(text)
        if mol is not None and max_heavy_atoms is not None and mol.GetNumHeavyAtoms() > max_heavy_atoms:
            reason = f"too large: {mol.GetNumHeavyAtoms()} heavy atoms > max_heavy_atoms={max_heavy_atoms}"
            mol = None
        if mol is None:
            invalid.append(InvalidSmiles(row, str(text), reason))
            continue
        kept.append(_to_smiles(mol, standardize))
        index.append(row)
    return len(chunk), kept, index, invalid


def _merge(
    parts: Iterable[_ChunkResult],
    kept: list[str],
    index: list[int],
    invalid: list[InvalidSmiles],
) -> None:
    """Append chunk results in order, shifting chunk rows to input rows."""
    offset = 0
    for size, chunk_kept, chunk_index, chunk_invalid in parts:
        kept += chunk_kept
        index += [offset + i for i in chunk_index]
        invalid += [replace(bad, row=offset + bad.row) for bad in chunk_invalid]
        offset += size


def _to_smiles(mol: Chem.Mol, standardize: StandardizeOptions | None) -> str:
    from rdkit import Chem

    if standardize is not None and not standardize.is_identity():
        mol = standardize_mol(mol, standardize)
    return Chem.MolToSmiles(mol)


def _parse_capturing_log(text: str) -> tuple[Chem.Mol | None, str]:
    """MolFromSmiles with RDKit's error log captured (and kept off the terminal)."""
    from rdkit import Chem, rdBase

    capture_cls = getattr(rdBase, "CaptureErrorLog", None)
    if capture_cls is None:  # an RDKit without the capture API: silence the log instead
        with rdBase.BlockLogs():
            return Chem.MolFromSmiles(text), ""
    with capture_cls() as capture:
        mol = Chem.MolFromSmiles(text)
    return mol, capture.messages


def _reason_from_log(messages: str) -> str:
    lines = [_TIMESTAMP.sub("", line).strip() for line in messages.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return "RDKit could not parse it"
    reason = " ".join(lines[0].split())
    position = next((m.group(1) for m in map(_POSITION.search, lines) if m), None)
    return f"{reason} (around position {position})" if position else reason
