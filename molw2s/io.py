"""Atomic writes, verified directories, content hashes and the cache directory shared by every stage."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR_ENV = "MOLW2S_DATA_DIR"
MANIFEST = "MANIFEST.json"
#: key of the content digest stored inside a checked JSON file (written with the file)
DIGEST_KEY = "_sha256"

log = logging.getLogger(__name__)


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
        with naming_os_errors(target):
            yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; the user's umask decides
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def naming_os_errors(path: str | Path) -> Iterator[None]:
    """Give ``path`` to an OS error raised inside without a file name (a write to an open
    file, a library's own writer), so that a full disk names where it was writing."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,59}$")


def safe_filename(text: str) -> str:
    """A file-name part for a user string: the string itself when it is a plain name (letters,
    digits, ``_ . -``, not starting with a dot, <= 60 characters), else a slug of it plus 8
    hex digits of its sha256, so ``../x`` or ``a/b`` can never leave the folder they name
    a file in, and two different strings never share a name."""
    if _SAFE_FILENAME.match(text) and ".." not in text:
        return text
    slug = _UNSAFE_CHARS.sub("_", text).strip("._")[:40] or "x"
    return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def quarantine(path: str | Path, reason: str) -> Path:
    """Move a corrupt artefact aside (``<name>.corrupt``, numbered if taken) and say so once.

    Readers of checked artefacts call this and then recompute: a corrupt file is never
    used, never deleted silently, and not reported again on the next run.
    """
    path = Path(path)
    target, n = path.with_name(f"{path.name}.corrupt"), 1
    while target.exists():
        target, n = path.with_name(f"{path.name}.corrupt{n}"), n + 1
    os.replace(path, target)
    log.warning("%s is corrupt (%s): moved aside to %s; recomputing it", path, reason, target.name)
    return target


def write_json_checked(target: str | Path, obj: dict[str, Any]) -> None:
    """Write a JSON object atomically with the sha256 of its content inside (``_sha256``)."""
    body = {k: v for k, v in obj.items() if k != DIGEST_KEY}
    write_json_atomic(target, {**body, DIGEST_KEY: _json_digest(body)})


def read_json_checked(path: str | Path) -> dict[str, Any] | None:
    """The object :func:`write_json_checked` wrote, without its digest; None when the file
    is missing, or (after :func:`quarantine`) unreadable or not matching its digest."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        quarantine(path, f"unreadable JSON: {exc}")
        return None
    if not isinstance(obj, dict) or DIGEST_KEY not in obj:
        quarantine(path, "no content digest (partial or foreign file)")
        return None
    body = {k: v for k, v in obj.items() if k != DIGEST_KEY}
    if obj[DIGEST_KEY] != _json_digest(body):
        quarantine(path, "content does not match its digest")
        return None
    return body


@dataclass(frozen=True)
class CachedResult:
    """A result cached as one checked JSON file (:func:`write_json_checked`) at ``path``.

    It is valid when its ``field`` holds ``key`` (``key=None``: the path alone names it) and
    it has every ``required`` key: a file written before a key was added to the results is
    stale, said once in the log, and recomputed instead of failing later on the missing key.
    """

    path: Path
    key: str | None = None
    field: str = "cell"
    required: frozenset[str] = frozenset()

    def load(self) -> dict[str, Any] | None:
        """The cached result, or None when missing, corrupt, keyed otherwise or stale."""
        cached = read_json_checked(self.path)
        if cached is None or (self.key is not None and cached.get(self.field) != self.key):
            return None
        missing = sorted(self.required - cached.keys())
        if missing:
            log.warning("%s is stale (written without %s): recomputing it", self.path, ", ".join(missing))
            return None
        return cached

    def store(self, result: dict[str, Any]) -> dict[str, Any]:
        """Write ``result`` with its key (under ``field``, last unless present); return what was written."""
        body = result if self.key is None else {**result, self.field: self.key}
        write_json_checked(self.path, body)
        return body


def save_npy_checked(target: str | Path, array: np.ndarray, info: dict[str, Any]) -> None:
    """Save ``array`` as ``.npy``, then ``info`` plus the array file's sha256 as the
    ``.json`` beside it (written last: an array without it is a partial write)."""
    target = Path(target)
    save_npy_atomic(target, array)
    write_json_checked(target.with_suffix(".json"), {**info, "npy_sha256": file_digest(target, "sha256")})


def load_npy_checked(path: str | Path) -> tuple[np.ndarray, dict[str, Any]] | None:
    """(array, info) saved by :func:`save_npy_checked`; None when missing, or (after
    :func:`quarantine`) partial, unreadable or not matching the recorded sha256."""
    path = Path(path)
    if not path.is_file():
        return None
    info = read_json_checked(path.with_suffix(".json"))
    if info is None or "npy_sha256" not in info:
        quarantine(path, "its checksum file is missing or corrupt")
        return None
    if file_digest(path, "sha256") != info["npy_sha256"]:
        quarantine(path, "array bytes do not match the recorded sha256")
        return None
    try:
        array = load_npy(path)
    except (OSError, ValueError) as exc:
        quarantine(path, f"unreadable array: {exc}")
        return None
    return array, info


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
    with naming_os_errors(target):
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


def array_digest(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes (identity of a representation)."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()[:20]


def file_digest(path: str | Path, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    """Hex digest of a file's bytes, streamed."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _json_digest(obj: Any) -> str:
    """Full :func:`content_hash` of ``obj`` as a JSON round trip leaves it (so the digest
    written with a file equals the one computed from the file read back)."""
    return content_hash(json.loads(json.dumps(obj, default=_json_default)), length=64)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
