"""The embedding cache: an encoder's rows for a list of SMILES, stored under
``cache_dir()/embeddings`` by content hash of the encoder's identity and the SMILES.

Used by :func:`molw2s.encoders.embed.compute_task_embedding` for whole tasks and by the
composite encoder for its parts, so a part shared with a plain model (``strong`` and
``concat:strong+rdkit2d``) is computed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from molw2s.encoders.spec import Encoder
from molw2s.io import cache_dir, content_hash, load_npy_checked, save_npy_checked


@dataclass
class TaskEmbedding:
    """Representations of a task with where they are cached and what was counted."""

    values: np.ndarray
    path: Path | None
    from_cache: bool
    info: dict[str, Any]


def cached_encoding(
    encoder: Encoder, smiles: Sequence[str], info: dict[str, Any], *, cache: bool = True, progress: bool = False
) -> TaskEmbedding:
    """``encoder.encode(smiles)``, read from or written to the cache (``cache=False``:
    neither). The key hashes the encoder's identity and the SMILES in order; a sidecar
    JSON, written last, records the spec, identity, shape, anything counted, the array's
    sha256 and ``info``; a cached array that does not match it is moved aside and recomputed.
    A cached result's info is the stored one updated with ``info``."""
    identity = encoder.identity()
    path = embedding_cache_path(content_hash("embedding-v2", identity, list(smiles)))
    cached = load_npy_checked(path) if cache else None
    if cached is not None:
        return TaskEmbedding(cached[0], path, True, {**cached[1], **info})
    values = encoder.encode(smiles, progress=progress)
    full = {
        "encoder": encoder.name,
        "identity": identity,
        **info,
        "shape": list(values.shape),
        "counts": getattr(encoder, "last_counts", {}),
    }
    if not cache:
        return TaskEmbedding(values, None, False, full)
    save_npy_checked(path, values, full)
    return TaskEmbedding(values, path, False, full)


def embedding_cache_path(key: str) -> Path:
    """Where the embedding with content hash ``key`` lives."""
    return cache_dir() / "embeddings" / f"{key}.npy"
