"""``molw2s data import``: copy verified data files (tasks, corpora, split files) into the cache."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from molw2s.data.fetch import cache_target, verify_corpus_file, verify_task_file
from molw2s.data.locate import find_file, search_dirs
from molw2s.data.registry import CORPUS_SOURCES, CORPUS_SUBDIR, SPLIT_SUBDIR, TASK_SOURCES, TASK_SUBDIR, TaskSource
from molw2s.data.split_files import load_split_file
from molw2s.errors import DataError
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
            assert split_of is not None  # the early return above covers task, corpus and split all None
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
