"""The local cache: ``fetch`` (download into it) and ``import`` (copy verified files into it).

MoleculeNet's files have no published checksum, so a downloaded or imported task file
is verified by structure instead: the SMILES and label columns exist and the row count
is the published one. GuacaMol files are verified by their published md5.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from molw2s.data.download import Opener, download, verify_md5
from molw2s.data.locate import cache_target, find_file, search_dirs
from molw2s.data.registry import (
    CORPUS_SOURCES,
    CORPUS_SUBDIR,
    SPLIT_SUBDIR,
    TASK_SOURCES,
    TASK_SUBDIR,
    CorpusSource,
    TaskSource,
)
from molw2s.data.tables import read_csv_columns, read_smiles_lines
from molw2s.errors import DataError, MolW2SError
from molw2s.io import atomic_path, file_digest

SPLIT_FILE = re.compile(r"^(?P<task>[A-Za-z]+)\.(?P<tag>[\w-]+)\.json$")


@dataclass(frozen=True)
class ImportResult:
    """What ``import`` did with one file."""

    source: Path
    kind: str
    status: str  # imported | up to date | rejected | ignored
    detail: str = ""
    target: Path | None = None


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


def import_directory(directory: str | Path) -> list[ImportResult]:
    """Copy every recognised data file in ``directory`` (and its moleculenet/, corpora/,
    splits/ sub-folders) into the cache after verifying it; report each file."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise DataError("not a directory", path=directory)
    folders = [directory, *(directory / sub for sub in (TASK_SUBDIR, CORPUS_SUBDIR, SPLIT_SUBDIR))]
    files = sorted(p for folder in folders if folder.is_dir() for p in folder.iterdir() if p.is_file())
    return [_import_one(path, directory) for path in files]


def _split_task(path: Path) -> str | None:
    """The task a ``<TASK>.<tag>.json`` split file belongs to, else None."""
    match = SPLIT_FILE.match(path.name)
    return match.group("task") if match and match.group("task") in TASK_SOURCES else None


def _import_one(path: Path, directory: Path) -> ImportResult:
    from molw2s.data.splits import load_split_file  # splits -> tasks -> store: import here

    task = next((s for s in TASK_SOURCES.values() if path.name in s.filenames), None)
    corpus = next((s for s in CORPUS_SOURCES.values() if path.name == s.filename), None)
    split_of = _split_task(path)
    if task is None and corpus is None and split_of is None:
        return ImportResult(path, "-", "ignored", "not a recognised data file")
    kind = f"task {task.name}" if task else f"corpus {corpus.name}" if corpus else f"split {split_of}"
    try:
        if task is not None:
            detail, subdir = f"{verify_task_file(task, path)} rows", TASK_SUBDIR
        elif corpus is not None:
            verify_corpus_file(corpus, path)
            detail, subdir = ("md5 ok" if corpus.md5 else "readable"), CORPUS_SUBDIR
        else:
            split = load_split_file(path, _task_rows(TASK_SOURCES[split_of], directory))
            detail, subdir = _sizes(split.sizes()), f"{TASK_SUBDIR}/{SPLIT_SUBDIR}"
    except DataError as exc:
        return ImportResult(path, kind, "rejected", str(exc))
    return _copy(path, kind, subdir, detail)


def _task_rows(source: TaskSource, directory: Path) -> int:
    """Row count of the task's file: the one being imported, else the cache's."""
    dirs = search_dirs(directory, TASK_SUBDIR)
    found = find_file(source.filenames, dirs)
    if found is None:
        raise DataError(f"cannot check this split: no {source.name} data file in {directory} or the cache")
    return verify_task_file(source, found)


def _copy(path: Path, kind: str, subdir: str, detail: str) -> ImportResult:
    target = cache_target(subdir, path.name)
    if target.is_file() and file_digest(target) == file_digest(path):
        return ImportResult(path, kind, "up to date", detail, target)
    with atomic_path(target) as tmp:
        shutil.copyfile(path, tmp)
    return ImportResult(path, kind, "imported", detail, target)


def _sizes(sizes: dict[str, int]) -> str:
    return "/".join(str(v) for v in sizes.values()) + " train/valid/test"
