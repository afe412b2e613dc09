"""Representations of a task's molecules from any encoder, cached by content hash.

An *encoder* maps SMILES to a float32 matrix (one row per molecule) and states what its
output depends on (``identity()``), which keys the cache. Encoders are named by spec
strings, parsed by the registry of model kinds (:mod:`molw2s.encoders.refs`):

=====================================  ==========================================
``bert:PATH`` or an existing ``PATH``   a pretrained checkpoint (HF directory)
``hf:DIR_OR_NAME[?options]``            any Hugging Face encoder (:mod:`.hf`)
``ecfp4-2048``, ``ecfp6-1024-counts``   Morgan fingerprints (ECFP diameter, bits)
``ecfp:radius=2,nbits=2048``            the same, by keywords (``counts=true``)
``maccs``                               MACCS keys
``rdkit2d``, ``rdkit2d-raw``            RDKit 2D descriptors (signed-log / raw)
``table:FILE[#NAME]``                   precomputed embeddings keyed by SMILES
``concat:SPEC+SPEC*W``                  standardised, weighted blocks side by side
``molfeat:NAME[?k=v]``                  a molfeat calculator (optional extra)
``chemprop:FILE``                       a chemprop v2 learned fingerprint (extra)
=====================================  ==========================================

Transformer embeddings are pooled (``mean`` by default, or ``cls``) from one layer
(:mod:`molw2s.encoders.transformer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from molw2s.encoders.cache import TaskEmbedding, cached_encoding
from molw2s.encoders.refs import model_encoder, parse_model_ref
from molw2s.encoders.spec import DEFAULT_POOLING, Encoder, EncoderOptions, ModelRef, Pooling, Precision

if TYPE_CHECKING:
    from molw2s.data.tasks import Task


def parse_encoder_spec(
    spec: str,
    *,
    pooling: Pooling = DEFAULT_POOLING,
    layer: int = -1,
    batch_size: int = 64,
    device: str = "auto",
    precision: Precision = "float32",
) -> Encoder:
    """An encoder from its spec string (see the module docstring); ``pooling``, ``layer``,
    ``batch_size``, ``device`` and ``precision`` apply to checkpoints."""
    options = EncoderOptions(pooling=pooling, layer=layer, batch_size=batch_size, device=device, precision=precision)
    return _encoder(spec, options)


def _encoder(spec: str | ModelRef, options: EncoderOptions) -> Encoder:
    """The encoder of a spec string or a parsed reference."""
    return model_encoder(parse_model_ref(spec) if isinstance(spec, str) else spec, options)


def embed_task(
    encoder_spec: str | ModelRef | Encoder,
    task: Task | str,
    *,
    pooling: Pooling = DEFAULT_POOLING,
    layer: int = -1,
    batch_size: int = 64,
    precision: Precision = "float32",
    cache: bool = True,
    data_dir: str | Path | None = None,
    progress: bool = False,
) -> np.ndarray:
    """(n_molecules, d) float32 representations of ``task`` (a Task or a task name).

    ``encoder_spec``: a spec string (see the module docstring), a reference or an encoder;
    ``pooling``, ``layer``, ``batch_size`` and ``precision`` apply to checkpoints (see
    :func:`embed_tasks` for several tasks with one loaded model). Cached: see
    :func:`compute_task_embedding`.
    """
    from molw2s.data.tasks import load_task

    options = EncoderOptions(pooling=pooling, layer=layer, batch_size=batch_size, precision=precision)
    encoder = encoder_spec if not isinstance(encoder_spec, (str, ModelRef)) else _encoder(encoder_spec, options)
    loaded = load_task(task, data_dir=data_dir) if isinstance(task, str) else task
    return compute_task_embedding(encoder, loaded, cache=cache, progress=progress).values


def embed_tasks(
    encoder_spec: str | ModelRef,
    tasks: Sequence[Task],
    *,
    pooling: Pooling = DEFAULT_POOLING,
    layer: int = -1,
    batch_size: int = 64,
    precision: Precision = "float32",
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Representations of every task by one encoder, by task name: a checkpoint is loaded
    and hashed once for all of them (and released with the encoder afterwards). Cached as
    :func:`embed_task`."""
    options = EncoderOptions(pooling=pooling, layer=layer, batch_size=batch_size, precision=precision)
    encoder = _encoder(encoder_spec, options)
    return {task.name: compute_task_embedding(encoder, task, progress=progress).values for task in tasks}


def compute_task_embedding(
    encoder: Encoder, task: Task, *, cache: bool = True, progress: bool = False
) -> TaskEmbedding:
    """Embed every molecule of ``task``, reading and writing ``cache_dir()/embeddings``.

    The cache key hashes the encoder's identity (for checkpoints: digests of weights,
    config and tokenizer, and the pooling and layer) and the task's molecules in order:
    representations depend on nothing else, so tasks over the same molecules (e.g. several
    properties of one library) share them. A sidecar JSON, written last, records the spec,
    shape, anything counted and the array's sha256; a cached array that does not match it
    is moved aside and recomputed.
    """
    return cached_encoding(
        encoder, task.smiles, {"task": task.name, "source": str(task.source)}, cache=cache, progress=progress
    )
