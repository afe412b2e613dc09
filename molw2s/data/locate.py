"""Where data files are looked for, and the message when they are nowhere.

Search order: the explicit ``data_dir`` (and its kind sub-folder, e.g.
``DIR/moleculenet``), then the cache root ``$MOLW2S_DATA_DIR`` or ``~/.cache/molw2s``
(and its sub-folder, where ``fetch`` and ``import`` put files).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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


def cache_target(subdir: str, filename: str) -> Path:
    """Where ``fetch`` / ``import`` store ``filename`` in the cache."""
    return cache_dir() / subdir / filename


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
