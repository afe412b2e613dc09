"""Unlabelled SMILES corpora for pretraining: nci5k (bundled), GuacaMol, MOSES, or a local file.

Subsampling is reproducible: rows are visited in the order of a seeded permutation and
the first ``n`` valid SMILES are kept (then sorted by file row), so ``n`` valid molecules
come back whenever the corpus has them, and every invalid SMILES met on the way is
reported. A parsed corpus is cached under ``cache_dir()/corpora`` by a content hash of
everything it depends on, so a rerun (or a second family on the same corpus) skips parsing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from molw2s.chem.smiles import DEFAULT_MAX_HEAVY_ATOMS, InvalidSmiles, format_invalid, parse_smiles
from molw2s.chem.standardize import StandardizeOptions
from molw2s.data.locate import find_corpus_file, not_found_error
from molw2s.data.registry import (
    CORPUS_ALIASES,
    CORPUS_SOURCES,
    NCI5K,
    corpus_names,
    lookup_name,
    nci5k_path,
    resolve_name,
)
from molw2s.data.tables import Columns, is_csv, match_column, read_csv_columns, read_header, read_smiles_lines
from molw2s.errors import ConfigError, DataError
from molw2s.io import cache_dir, content_hash, file_digest, read_json_checked, write_json_checked


@dataclass
class Corpus:
    """Canonical SMILES drawn from a corpus file, with their 0-based file rows."""

    name: str
    smiles: list[str]
    rows: np.ndarray
    source: Path
    n_total: int
    invalid: list[InvalidSmiles] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        """How many invalid SMILES were met (and excluded)."""
        return len(self.invalid)

    def __len__(self) -> int:
        return len(self.smiles)

    def report(self, max_examples: int = 5) -> str:
        """Where the corpus came from, how many molecules, which rows were excluded."""
        head = f"corpus {self.name}: {len(self.smiles)} molecules from {self.source} ({self.n_total} rows)"
        examined = len(self.smiles) + len(self.invalid)
        return head + "\n" + format_invalid(self.invalid, examined, max_examples=max_examples)


def load_corpus(
    name_or_path: str,
    *,
    n: int | None = None,
    seed: int = 0,
    data_dir: str | Path | None = None,
    smiles_col: str | None = None,
    standardize: StandardizeOptions | None = None,
    strict: bool = False,
    download: bool = True,
    progress: bool = False,
    max_heavy_atoms: int | None = DEFAULT_MAX_HEAVY_ATOMS,
    n_jobs: int = 1,
) -> Corpus:
    """Load a corpus by name (``nci5k``, ``guacamol[:train|valid|test|all]``, ``moses``) or path.

    ``n`` valid molecules are drawn reproducibly with ``seed`` (all rows when None).
    ``strict`` raises :class:`DataError` listing the invalid SMILES met instead of skipping them.
    ``n_jobs`` processes parse the SMILES (the result does not depend on it).
    """
    if n is not None and n < 1:
        raise ConfigError(f"corpus size n must be >= 1, got {n}")
    name, path, column = _locate(name_or_path, data_dir, smiles_col, download)
    key = _cache_key(path, column, n, seed, standardize, max_heavy_atoms)
    cache = cache_dir() / "corpora" / f"{key}.json"
    cached = read_json_checked(cache)
    if cached is not None:
        corpus = Corpus(
            name,
            cached["smiles"],
            np.asarray(cached["rows"], dtype=np.int64),
            path,
            cached["n_total"],
            [InvalidSmiles(**item) for item in cached["invalid"]],
        )
    else:
        corpus = _parse_corpus(name, path, column, n, seed, standardize, progress, max_heavy_atoms, n_jobs)
        write_json_checked(
            cache,
            {
                "smiles": corpus.smiles,
                "rows": corpus.rows.tolist(),
                "n_total": corpus.n_total,
                "invalid": [asdict(item) for item in corpus.invalid],
            },
        )
    if strict and corpus.invalid:
        raise DataError(f"strict mode: {format_invalid(corpus.invalid, len(corpus) + corpus.n_skipped)}", path=path)
    if n is not None and len(corpus) < n:
        raise DataError(f"asked for n={n} valid molecules but only {len(corpus)} are valid", path=path)
    if len(corpus) == 0:
        raise DataError(
            f"corpus {name}: no valid molecule in {corpus.n_total} row(s) (column {column!r}); "
            "check the file and its SMILES column",
            path=path,
        )
    return corpus


def _cache_key(
    path: Path,
    column: str | None,
    n: int | None,
    seed: int,
    standardize: StandardizeOptions | None,
    max_heavy_atoms: int | None,
) -> str:
    """What a parsed corpus depends on: the file's bytes, the column, the draw, the cleaning
    and the RDKit version (canonical SMILES may change between versions)."""
    from rdkit import rdBase

    options = None if standardize is None else standardize.model_dump(mode="json")
    digest = file_digest(path, "sha256")
    return content_hash("corpus-v1", digest, column, n, seed, options, max_heavy_atoms, rdBase.rdkitVersion)


def _parse_corpus(
    name: str,
    path: Path,
    column: str | None,
    n: int | None,
    seed: int,
    standardize: StandardizeOptions | None,
    progress: bool,
    max_heavy_atoms: int | None,
    n_jobs: int,
) -> Corpus:
    """Read the file and draw the first ``n`` valid SMILES of a seeded permutation."""
    table = read_csv_columns(path, [column]) if column else read_smiles_lines(path)
    raw = table.values[column or "smiles"]
    if n is not None and n > len(raw):
        raise ConfigError(f"asked for n={n} molecules but {path} has only {len(raw)} rows")
    order = np.arange(len(raw)) if n is None else np.random.default_rng(seed).permutation(len(raw))
    want = len(raw) if n is None else n
    smiles, rows, invalid = _first_valid(raw, order, want, table, standardize, progress, max_heavy_atoms, n_jobs)
    keep = np.argsort(rows, kind="stable")
    return Corpus(name, [smiles[i] for i in keep], rows[keep], path, len(raw), invalid)


def _locate(
    name_or_path: str, data_dir: str | Path | None, smiles_col: str | None, download: bool
) -> tuple[str, Path, str | None]:
    """(display name, file, SMILES column or None for .smi-style files)."""
    key = lookup_name(name_or_path, corpus_names(), CORPUS_ALIASES)
    path = Path(name_or_path).expanduser()
    if key is None and path.is_file():
        column = None
        if is_csv(path):
            header = read_header(path)
            column = header[match_column(smiles_col or "smiles", header, path)]
        return path.name, path, column
    key = key or resolve_name(name_or_path, corpus_names(), CORPUS_ALIASES, "corpus")
    if key == NCI5K:
        nci = nci5k_path()
        if not nci.is_file():
            raise not_found_error(NCI5K, [nci.name], [nci.parent], "it ships with RDKit; is RDKit complete?")
        return NCI5K, nci, None
    source = CORPUS_SOURCES[key]
    return key, find_corpus_file(source, data_dir, download), smiles_col or source.smiles_col


def _first_valid(
    raw: list[str],
    order: np.ndarray,
    want: int,
    table: Columns,
    standardize: StandardizeOptions | None,
    progress: bool,
    max_heavy_atoms: int | None,
    n_jobs: int,
) -> tuple[list[str], np.ndarray, list[InvalidSmiles]]:
    """Walk ``order`` in batches until ``want`` valid SMILES are found; rows are file rows."""
    smiles: list[str] = []
    rows: list[int] = []
    invalid: list[InvalidSmiles] = []
    start = 0
    while len(smiles) < want and start < len(order):
        need = want - len(smiles)
        batch = order[start : start + need + need // 10 + 8]
        start += len(batch)
        parsed = parse_smiles(
            [raw[i] for i in batch],
            standardize=standardize,
            progress=progress,
            max_heavy_atoms=max_heavy_atoms,
            n_jobs=n_jobs,
        )
        cut = parsed.index[need - 1] if len(parsed.index) >= need else len(batch)
        for pos, text in zip(parsed.index[:need], parsed.smiles[:need]):
            smiles.append(text)
            rows.append(int(batch[pos]))
        for bad in parsed.invalid:
            if bad.row <= cut:
                row = int(batch[bad.row])
                invalid.append(replace(bad, row=row, line=table.lines[row]))
    return smiles, np.asarray(rows, dtype=np.int64), sorted(invalid, key=lambda item: item.row)
