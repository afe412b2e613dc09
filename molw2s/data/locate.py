"""Where data files are found: tasks, corpora and split files, and the message when
they are nowhere. Every lookup of a data file goes through this module.

Search order: the explicit ``data_dir`` (and its kind sub-folder, e.g.
``DIR/moleculenet``), then the cache root ``$MOLW2S_DATA_DIR`` or ``~/.cache/molw2s``
(and its sub-folder, where ``fetch`` and ``import`` put files).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from molw2s.data.download import DownloadError
from molw2s.data.fetch import fetch_corpus, fetch_task
from molw2s.data.registry import CORPUS_SUBDIR, SPLIT_SUBDIR, TASK_SUBDIR, CorpusSource, TaskSource
from molw2s.errors import DataNotFoundError
from molw2s.io import DATA_DIR_ENV, cache_dir


def search_dirs(data_dir: str | Path | None, subdir: str) -> list[Path]:
    """Directories searched for a file of kind ``subdir``, in order, without repeats."""
    roots = [Path(data_dir).expanduser()] if data_dir is not None else []
    roots.append(cache_dir())
    out: list[Path] = []
    for root in roots:
        for folder in (root, root / subdir):
            if folder not in out:
                out.append(folder)
    return out


def find_file(filenames: Sequence[str], dirs: Sequence[Path]) -> Path | None:
    """The first ``dir/filename`` that exists (directories outer, names inner), else None."""
    for folder in dirs:
        for name in filenames:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def not_found_error(
    what: str, filenames: Sequence[str], dirs: Sequence[Path], why_not_downloaded: str | None = None
) -> DataNotFoundError:
    """An error naming the missing file(s), where they were looked for, and the three ways to provide them."""
    lines = [
        f"{what}: none of {', '.join(filenames)} found in:",
        *[f"  {d}" for d in dirs],
    ]
    if why_not_downloaded:
        lines.append(f"and it could not be downloaded: {why_not_downloaded}")
    lines += [
        "Provide the file in one of three ways:",
        f"  1. set the environment variable {DATA_DIR_ENV} to a directory that holds it",
        "  2. pass --data-dir DIR on the command line (data_dir=DIR in Python)",
        f"  3. run `molw2s data import DIR` to copy it into the cache ({cache_dir()})",
    ]
    return DataNotFoundError("\n".join(lines))


def find_task_file(source: TaskSource, data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The task's file in either layout; downloaded from MoleculeNet into the cache when allowed."""
    dirs = search_dirs(data_dir, TASK_SUBDIR)
    found = find_file(source.filenames, dirs)
    if found is not None:
        return found
    if not download:
        raise not_found_error(source.name, source.filenames, dirs, "downloads are disabled")
    try:
        return fetch_task(source.name)
    except DownloadError as exc:
        raise not_found_error(source.name, source.filenames, dirs, str(exc)) from exc


def find_corpus_file(source: CorpusSource, data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The local file of ``source``; downloaded (md5-checked) into the cache when allowed."""
    dirs = search_dirs(data_dir, CORPUS_SUBDIR)
    found = find_file([source.filename], dirs)
    if found is not None:
        return found
    if source.url is None:
        raise not_found_error(source.name, [source.filename], dirs, "no download URL (local file only)")
    if not download:
        raise not_found_error(source.name, [source.filename], dirs, "downloads are disabled")
    try:
        return fetch_corpus(source.name)
    except DownloadError as exc:
        raise not_found_error(source.name, [source.filename], dirs, str(exc)) from exc


def split_file_dirs(data_dir: str | Path | None) -> list[Path]:
    """Folders searched for ``<TASK>.<tag>.json`` split files (each data folder and its splits/)."""
    out: list[Path] = []
    for folder in search_dirs(data_dir, TASK_SUBDIR):
        out += [folder / SPLIT_SUBDIR, folder]
    return out


def find_split_file(filename: str, data_dir: str | Path | None = None) -> Path | None:
    """The split file ``filename`` (e.g. ``ESOL.random122.json``) in the data folders, else None."""
    return find_file([filename], split_file_dirs(data_dir))
