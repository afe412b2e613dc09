"""Read SMILES and label columns from ``.csv`` / ``.csv.gz`` / ``.smi`` files, as text.

Values stay strings so that a bad label can be reported with its exact row, line and
text. Rows are 0-based data rows; ``lines`` holds each row's 1-based line in the file.
A truncated or corrupt gzip, undecodable bytes or broken CSV quoting raise
:class:`DataError` naming the file and the last row read.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from molw2s.errors import DataError

_GZIP_MAGIC = b"\x1f\x8b"
_READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError, csv.Error)


@dataclass
class Columns:
    """Some columns of a table, as strings, with the file line of each row."""

    path: Path
    header: list[str]
    values: dict[str, list[str]]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.lines)


@contextmanager
def open_text(path: str | Path) -> Iterator[TextIO]:
    """Open a text file, transparently gunzipping gzip files (by their magic bytes; UTF-8, BOM tolerated)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    with (
        gzip.open(path, "rb") if gzipped else open(path, "rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text,
    ):
        yield text


def read_csv_columns(path: str | Path, columns: Sequence[str]) -> Columns:
    """Read ``columns`` of a CSV with a header; a missing column names the ones present."""
    path = Path(path)
    values: dict[str, list[str]] = {}
    lines: list[int] = []
    try:
        with open_text(path) as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            if not header:
                raise DataError("empty file (no header line)", path=path)
            positions = {col: match_column(col, header, path) for col in columns}
            values = {col: [] for col in columns}
            for record in reader:
                if not record:  # a blank line is not a row (as in pandas)
                    continue
                lines.append(reader.line_num)
                for col, j in positions.items():
                    values[col].append(record[j] if j < len(record) else "")
    except _READ_ERRORS as exc:
        raise DataError(f"unreadable (truncated or corrupt?) after row {len(lines) - 1}: {exc}", path=path) from exc
    return Columns(path, header, values, lines)


def read_header(path: str | Path) -> list[str]:
    """The column names of a CSV file."""
    try:
        with open_text(path) as fh:
            return [h.strip() for h in next(csv.reader(fh), [])]
    except _READ_ERRORS as exc:
        raise DataError(f"unreadable (truncated or corrupt?): {exc}", path=path) from exc


def read_smiles_lines(path: str | Path) -> Columns:
    """Read a ``.smi``-style file: the first whitespace-separated token of each line.

    Blank lines are skipped; a first line whose first token is ``smiles`` (any case)
    is taken as a header.
    """
    path = Path(path)
    smiles: list[str] = []
    lines: list[int] = []
    try:
        with open_text(path) as fh:
            for number, line in enumerate(fh, start=1):
                tokens = line.split()
                if not tokens or (number == 1 and tokens[0].lower() == "smiles"):
                    continue
                smiles.append(tokens[0])
                lines.append(number)
    except _READ_ERRORS as exc:
        raise DataError(f"unreadable (truncated or corrupt?) after row {len(lines) - 1}: {exc}", path=path) from exc
    return Columns(path, ["smiles"], {"smiles": smiles}, lines)


def match_column(name: str, header: Sequence[str], path: str | Path) -> int:
    """Index of column ``name`` (exact, else case-insensitive); DataError listing the columns."""
    if name in header:
        return list(header).index(name)
    folded = [h.lower() for h in header]
    if name.lower() in folded:
        return folded.index(name.lower())
    raise DataError(f"column not found; the file has columns {list(header)}", path=path, column=name)


def is_csv(path: str | Path) -> bool:
    """True for ``.csv`` and ``.csv.gz`` files (else the file is read as ``.smi``-style)."""
    name = Path(path).name.lower()
    return name.endswith((".csv", ".csv.gz"))


def csv_stem(path: str | Path) -> str:
    """A table file's name without ``.csv`` / ``.csv.gz`` / ``.smi`` (``data/my.csv.gz`` -> ``my``)."""
    name = Path(path).name
    for suffix in (".csv.gz", ".csv", ".smi.gz", ".smi", ".gz"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name
