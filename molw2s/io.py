"""Atomic writes, content hashes and the cache directory shared by every stage."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR_ENV = "MOLW2S_DATA_DIR"


def cache_dir() -> Path:
    """The data/cache root: ``$MOLW2S_DATA_DIR`` if set, else ``~/.cache/molw2s``."""
    env = os.environ.get(DATA_DIR_ENV)
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "molw2s"
    return root


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    A run killed mid-write leaves the old file (or none), never a truncated one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(target: str | Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json_atomic(target: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (numpy scalars and arrays allowed)."""
    write_text_atomic(target, json.dumps(obj, indent=2, default=_json_default) + "\n")


def save_npy_atomic(target: str | Path, array: np.ndarray) -> None:
    """Save one array as ``.npy`` atomically."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def load_npy(path: str | Path) -> np.ndarray:
    """Load a ``.npy`` array without ever unpickling."""
    return np.load(path, allow_pickle=False)


def content_hash(*parts: Any, length: int = 16) -> str:
    """A stable short hex digest of JSON-serialisable parts (dicts sorted by key)."""
    payload = json.dumps(parts, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(payload).hexdigest()[:length]


def file_digest(path: str | Path, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    """Hex digest of a file's bytes, streamed."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
