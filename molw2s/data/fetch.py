"""Downloading data files into the cache, and verifying a task or corpus file.

MoleculeNet's files have no published checksum, so a downloaded or imported task file
is verified by structure instead: the SMILES and label columns exist and the row count
is the published one. GuacaMol files are verified by their published md5.
"""

from __future__ import annotations

from pathlib import Path

from molw2s.data.download import Opener, download, verify_md5
from molw2s.data.registry import CORPUS_SOURCES, CORPUS_SUBDIR, TASK_SOURCES, TASK_SUBDIR, CorpusSource, TaskSource
from molw2s.data.tables import read_csv_columns, read_smiles_lines
from molw2s.errors import DataError, MolW2SError
from molw2s.io import cache_dir


def cache_target(subdir: str, filename: str) -> Path:
    """Where ``fetch`` / ``import`` store ``filename`` in the cache."""
    return cache_dir() / subdir / filename


def verify_task_file(source: TaskSource, path: str | Path) -> int:
    """Check a task file's columns and row count; return the row count or raise DataError."""
    table = read_csv_columns(path, [source.smiles_col, source.label_col])
    if len(table) != source.n_rows:
        raise DataError(f"{source.name} should have {source.n_rows} rows, found {len(table)}", path=path)
    return len(table)


def verify_corpus_file(source: CorpusSource, path: str | Path) -> None:
    """md5 where published, else check the whole file reads and has its SMILES column."""
    if source.md5 is not None:
        verify_md5(path, source.md5)
    elif source.smiles_col is not None:
        read_csv_columns(path, [source.smiles_col])
    else:
        read_smiles_lines(path)


def fetch_task(name: str, *, force: bool = False, opener: Opener | None = None, progress: bool = True) -> Path:
    """Download a task's canonical MoleculeNet file into the cache (structure-verified)."""
    source = TASK_SOURCES[name]
    target = cache_target(TASK_SUBDIR, source.url.rsplit("/", 1)[-1])
    if target.is_file() and not force:
        verify_task_file(source, target)
        return target
    return download(
        source.url, target, verify=lambda tmp: verify_task_file(source, tmp), opener=opener, progress=progress
    )


def fetch_corpus(name: str, *, force: bool = False, opener: Opener | None = None, progress: bool = True) -> Path:
    """Download a corpus file into the cache, checking its md5."""
    source = CORPUS_SOURCES[name]
    if source.url is None:
        raise MolW2SError(f"{name} cannot be downloaded (local file only); use `molw2s data import DIR`")
    target = cache_target(CORPUS_SUBDIR, source.filename)
    if target.is_file() and not force:
        verify_corpus_file(source, target)
        return target
    return download(source.url, target, md5=source.md5, opener=opener, progress=progress)
