"""Atomic writes, verified directories, content hashes and the cache directory shared by every stage."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR_ENV = "MOLW2S_DATA_DIR"
MANIFEST = "MANIFEST.json"


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
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def load_npy(path: str | Path) -> np.ndarray:
    """Load a ``.npy`` array without ever unpickling."""
    array: np.ndarray = np.load(path, allow_pickle=False)
    return array


def write_verified_dir(target: str | Path, fill: Callable[[Path], None], meta: dict[str, Any]) -> Path:
    """Let ``fill`` write files into a temp dir, add the manifest last, rename onto ``target``.

    An existing ``target`` is replaced. Killed at any point, this leaves either the old
    directory, or the new complete one, or a ``.tmp`` directory that readers ignore.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    fill(tmp)
    files = {
        p.name: {"sha256": file_digest(p, "sha256"), "bytes": p.stat().st_size}
        for p in sorted(tmp.iterdir())
        if p.is_file()
    }
    write_json_atomic(tmp / MANIFEST, {**meta, "files": files})
    if target.exists():
        trash = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, trash)
        os.replace(tmp, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return target


def verify_dir(directory: str | Path) -> str | None:
    """``None`` if the manifest matches the files, else the reason it does not."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        return "no MANIFEST.json (partial write)"
    except (ValueError, KeyError, TypeError) as exc:
        return f"unreadable MANIFEST.json ({exc})"
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"] or file_digest(path, "sha256") != expected["sha256"]:
            return f"{name} does not match its checksum"
    return None


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a verified directory (call :func:`verify_dir` first)."""
    manifest: dict[str, Any] = json.loads((Path(directory) / MANIFEST).read_text())
    return manifest


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
