"""Split files: JSON ``{"train", "valid", "test"}`` lists of 0-based file rows, and the
paper's ChemBench splits ``<TASK>.random<seed>.json``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from molw2s.data.fetch import verify_task_file
from molw2s.data.locate import find_split_file, find_task_file
from molw2s.data.registry import TASK_SOURCES, resolve_name, task_aliases
from molw2s.data.splits import Split, random_split, validate_split
from molw2s.errors import DataError
from molw2s.io import write_json_atomic

log = logging.getLogger(__name__)


def load_split_file(path: str | Path, n_rows: int) -> Split:
    """Read and validate a JSON split file (0-based row indices) for a table of ``n_rows`` rows."""
    path = Path(path)
    if not path.is_file():
        raise DataError("split file not found", path=path)
    try:
        parts = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not valid JSON: {exc}", path=path) from exc
    return validate_split(parts, n_rows, source=path)


def save_split_file(split: Split, path: str | Path) -> None:
    """Write ``split`` as a JSON split file (atomically)."""
    write_json_atomic(path, split.as_dict())


def paper_split(task_name: str, seed: int, data_dir: str | Path | None = None, download: bool = True) -> Split:
    """The paper's ChemBench split ``<TASK>.random<seed>.json`` (file rows), checked against the data.

    When no such file is found the split is regenerated with :func:`random_split`,
    which reproduces ChemBench's files exactly (seeds 122, 123, 124 are the paper's).
    """
    key = resolve_name(task_name, list(TASK_SOURCES), task_aliases(), "task with paper splits")
    source = TASK_SOURCES[key]
    n_rows = verify_task_file(source, find_task_file(source, data_dir, download))
    filename = f"{key}.random{seed}.json"
    found = find_split_file(filename, data_dir)
    if found is not None:
        return load_split_file(found, n_rows)
    log.info("%s not found; regenerating it with random_split (identical to ChemBench's)", filename)
    return random_split(n_rows, (0.8, 0.1, 0.1), seed)
