"""Reading user arrays from ``.npy`` / ``.npz`` files, never unpickling."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from molw2s.errors import DataError, DataNotFoundError

#: the first bytes of a .npy file and of a .npz (zip) file
_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK\x03\x04"}


def _what_file(head: bytes) -> str:
    """What a file starting with ``head`` looks like: empty, a pickle, text, or unknown."""
    if not head:
        return "an empty file"
    if head[:1] == b"\x80":
        return "a Python pickle (never loaded: unpickling can run code)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file of unknown format"
    if all(c.isprintable() or c.isspace() for c in text):
        return f"a text file (starting {text.splitlines()[0][:40]!r})"
    return "a binary file of unknown format"


def load_array(spec: str | Path, what: str = "array") -> np.ndarray:
    """The array in ``spec``: ``file.npy``, ``file.npz`` holding one array, or
    ``file.npz:key`` naming one of several. Errors name the file and what was expected."""
    text, key = str(spec), None
    head, sep, tail = text.rpartition(":")
    if sep and head.endswith((".npy", ".npz")):
        text, key = head, tail
    path = Path(text)
    if not path.is_file():
        raise DataNotFoundError(f"{what} file not found: {path}")
    if path.suffix not in (".npy", ".npz"):
        raise DataError(f"{what} must be a .npy or .npz file", path=path)
    with open(path, "rb") as fh:
        start = fh.read(64)
    if not start.startswith(_MAGIC[path.suffix]):
        raise DataError(
            f"{what} is {_what_file(start)}, not a {path.suffix} file: write it with numpy.save / numpy.savez",
            path=path,
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"cannot read {what} without unpickling Python objects ({exc})", path=path) from exc
    except OSError as exc:
        raise DataError(f"cannot read {what}: {exc}", path=path) from exc
    if isinstance(loaded, np.ndarray):
        if key is not None:
            raise DataError(f"a key ({key!r}) was given but the file is a single .npy array", path=path)
        return loaded
    with loaded:
        keys = list(loaded.files)
        if key is None:
            if len(keys) != 1:
                raise DataError(f"holds {len(keys)} arrays {keys}; name one as {path}:KEY", path=path)
            key = keys[0]
        if key not in keys:
            raise DataError(f"has no array {key!r}; it holds {keys}", path=path)
        try:
            array: np.ndarray = loaded[key]
            return array
        except ValueError as exc:
            raise DataError(f"cannot read {what} {key!r} without unpickling ({exc})", path=path) from exc
