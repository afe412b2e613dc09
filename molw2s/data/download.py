"""Streamed downloads: temp file + atomic rename, retries with exponential backoff, md5 check.

A file that fails its checksum (or the caller's ``verify``) is deleted and never reaches
``target``; a checksum mismatch is not retried (the bytes arrived; they are wrong).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from time import sleep
from typing import IO

from molw2s.errors import ChecksumError, MolW2SError
from molw2s.io import atomic_path, file_digest
from molw2s.progress import show_progress

log = logging.getLogger(__name__)

Opener = Callable[..., IO[bytes]]
_CHUNK = 1 << 16


class DownloadError(MolW2SError):
    """A download failed after all retries (offline, server error, incomplete transfer)."""


class IncompleteDownloadError(OSError):
    """Fewer bytes arrived than the server announced."""


def download(
    url: str,
    target: str | Path,
    *,
    md5: str | None = None,
    verify: Callable[[Path], object] | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
    opener: Opener | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``target`` atomically; return ``target``.

    ``md5`` (if given) must match; ``verify(tmp_path)`` may raise to reject the file.
    Network errors and incomplete transfers are retried ``retries`` times, waiting
    ``backoff * 2**attempt`` seconds; HTTP 4xx errors (except 429) are not retried.
    """
    target = Path(target)
    open_url = opener or urllib.request.urlopen
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            wait = backoff * 2 ** (attempt - 1)
            log.info("retrying %s in %.1f s (attempt %d of %d): %s", url, wait, attempt + 1, retries + 1, last)
            sleep(wait)
        try:
            with atomic_path(target) as tmp:
                digest = _stream(open_url, url, tmp, timeout, progress)
                if md5 is not None and digest != md5.lower():
                    raise ChecksumError(
                        f"md5 mismatch: expected {md5}, got {digest}; the file was rejected and deleted",
                        path=url,
                    )
                if verify is not None:
                    verify(tmp)
            return target
        except urllib.error.HTTPError as exc:
            last = exc
            if 400 <= exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            last = exc
    raise DownloadError(f"could not download {url}: {last}")


def verify_md5(path: str | Path, md5: str) -> None:
    """Raise :class:`ChecksumError` if the file's md5 is not ``md5``."""
    digest = file_digest(path, "md5")
    if digest != md5.lower():
        raise ChecksumError(f"md5 mismatch: expected {md5}, got {digest}", path=path)


def _stream(open_url: Opener, url: str, tmp: Path, timeout: float, progress: bool) -> str:
    """Copy the response body to ``tmp`` in chunks with a progress bar; return its md5."""
    from tqdm.auto import tqdm

    h = hashlib.md5()
    received = 0
    with open_url(url, timeout=timeout) as response, open(tmp, "wb") as out:
        length = (getattr(response, "headers", None) or {}).get("Content-Length")
        total = int(length) if length else None
        name = url.rsplit("/", 1)[-1]
        with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not show_progress(progress)) as bar:
            for block in iter(lambda: response.read(_CHUNK), b""):
                out.write(block)
                h.update(block)
                received += len(block)
                bar.update(len(block))
    if total is not None and received != total:
        raise IncompleteDownloadError(f"received {received} of {total} bytes")
    return h.hexdigest()
