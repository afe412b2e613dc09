"""Representations of a task's molecules from any encoder, cached by content hash.

An *encoder* maps SMILES to a float32 matrix (one row per molecule) and states what its
output depends on (``identity()``), which keys the cache. Encoders are named by spec
strings:

=====================================  ==========================================
``bert:PATH`` or an existing ``PATH``   a pretrained checkpoint (HF directory)
``ecfp4-2048``, ``ecfp6-1024-counts``   Morgan fingerprints (ECFP diameter, bits)
``ecfp:radius=2,nbits=2048``            the same, by keywords (``counts=true``)
``maccs``                               MACCS keys
``rdkit2d``, ``rdkit2d-raw``            RDKit 2D descriptors (signed-log / raw)
=====================================  ==========================================

Transformer embeddings are pooled from one layer (``cls``: the [CLS] vector; ``mean``:
the mean over the real tokens, [CLS] and [SEP] included), computed without gradients in
length-sorted batches, and returned in the input order. ``precision="bfloat16"`` runs the
forward pass under bf16 autocast (faster where the hardware has bf16 units; the embeddings
differ from float32 at rounding level and are cached apart; docs/benchmarks.md measures both).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from molw2s.encoders.fingerprints import ECFPEncoder, MACCSEncoder, RDKitDescriptorEncoder
from molw2s.encoders.tokenizer import SMILES_FORM_KEY
from molw2s.errors import ConfigError
from molw2s.io import cache_dir, content_hash, file_digest, load_npy_checked, save_npy_checked

if TYPE_CHECKING:
    import torch

    from molw2s.data.tasks import Task

log = logging.getLogger(__name__)

Pooling = Literal["cls", "mean"]
POOLINGS = ("cls", "mean")
Precision = Literal["float32", "bfloat16"]
PRECISIONS = ("float32", "bfloat16")
#: the files of a checkpoint directory an embedding depends on
CHECKPOINT_FILES = ("model.safetensors", "config.json", "tokenizer.json")


class Encoder(Protocol):
    """Anything that embeds SMILES: fingerprints, descriptors, transformer checkpoints."""

    @property
    def name(self) -> str:
        """The spec string naming this encoder."""

    def identity(self) -> dict[str, Any]:
        """JSON-ready description of everything the output depends on (keys the cache)."""

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, d) float32 representations, one row per SMILES, in input order."""


@dataclass
class TransformerEncoder:
    """Pooled hidden states of a pretrained MolBERT checkpoint directory.

    The model, tokenizer and file digests are loaded on first use and kept while the
    encoder lives (reloaded if the weights file changes), so embedding several tasks with
    one encoder loads and hashes the checkpoint once.
    """

    path: Path
    pooling: Pooling = "cls"
    layer: int = -1
    batch_size: int = 64
    sort_by_length: bool = True
    device: str = "auto"
    precision: Precision = "float32"
    last_counts: dict[str, int] = field(default_factory=dict)  # [UNK] tokens and truncated SMILES, last call
    _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def name(self) -> str:
        """``bert:<path>``."""
        return f"bert:{self.path}"

    def identity(self) -> dict[str, Any]:
        """Digests of the weights, config and tokenizer, plus pooling, layer, the SMILES
        spelling the tokenizer asks for and a precision other than float32."""
        files = self._cached("digests", self._file_digests)
        identity = {"kind": "bert", "files": files, "pooling": self.pooling, "layer": self.layer}
        tokenizer_config = self.path / "tokenizer_config.json"
        form = json.loads(tokenizer_config.read_text()).get(SMILES_FORM_KEY) if tokenizer_config.is_file() else None
        if form is not None:  # keys the cache only when set, so older caches stay valid
            identity[SMILES_FORM_KEY] = form
        if self.precision != "float32":  # likewise: float32 caches keep their keys
            identity["precision"] = self.precision
        return identity

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, hidden) float32 embeddings, in the order of ``smiles``.

        Batches are padded on the host (pinned when the model is on a GPU) and copied
        without blocking; pooled vectors stay on the device until the last batch, so the
        loop never waits for the device (the padding mask goes in 4-d, and only the last
        layer is computed when it is the one pooled). ``precision: bfloat16`` runs the forward pass under
        bf16 autocast; pooling is always float32.
        """
        import torch
        from tqdm.auto import tqdm

        from molw2s.encoders.model import padding_attention_mask
        from molw2s.encoders.padding import pad_batch
        from molw2s.encoders.tokenizer import encode_smiles

        model, tokenizer, device = self._cached(f"model@{self.device}", self._load)
        n_states = model.config.num_hidden_layers + 1
        if not -n_states <= self.layer < n_states:
            raise ConfigError(
                f"layer {self.layer} out of range for a {n_states - 1}-layer model (0 = embeddings, -1 = last)"
            )
        encoded = encode_smiles(tokenizer, smiles, max_length=model.config.max_position_embeddings)
        self.last_counts = {"unk_tokens": encoded.n_unk, "truncated": len(encoded.truncated)}
        if encoded.truncated:
            log.warning(
                "%s: %d SMILES longer than %d tokens were truncated",
                self.name,
                len(encoded.truncated),
                model.config.max_position_embeddings,
            )
        lengths = np.array([len(s) for s in encoded.ids])
        order = np.argsort(lengths, kind="stable") if self.sort_by_length else np.arange(len(lengths))
        pin = device.type == "cuda"
        last = self.layer in (-1, n_states - 1)  # the last layer's output: no other layer kept
        pooled = []
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")
        with torch.inference_mode(), autocast:
            for start in tqdm(
                range(0, len(order), self.batch_size), desc=self.path.name, unit="batch", disable=not progress
            ):
                ids, attention = pad_batch(
                    [encoded.ids[i] for i in order[start : start + self.batch_size]], tokenizer.pad_token_id
                )
                if pin:
                    ids, attention = ids.pin_memory(), attention.pin_memory()
                ids, attention = ids.to(device, non_blocking=True), attention.to(device, non_blocking=True)
                mask = padding_attention_mask(model.config, attention)
                out = model(input_ids=ids, attention_mask=mask, output_hidden_states=not last)
                hidden = out.last_hidden_state if last else out.hidden_states[self.layer]
                pooled.append(pool(hidden.float(), attention, self.pooling))
        out = np.zeros((len(lengths), model.config.hidden_size), dtype=np.float32)
        if pooled:
            out[order] = torch.cat(pooled).cpu().numpy()
        return out

    def _cached(self, what: str, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per version of the checkpoint's files."""
        signature = tuple(
            (s.st_size, s.st_mtime_ns, s.st_ino)
            for s in (p.stat() for p in (self.path / n for n in CHECKPOINT_FILES) if p.exists())
        )
        if self._loaded.get(f"{what}:signature") != signature:
            self._loaded[what] = make()
            self._loaded[f"{what}:signature"] = signature
        return self._loaded[what]

    def _file_digests(self) -> dict[str, str]:
        return {n: file_digest(self.path / n, "sha256") for n in CHECKPOINT_FILES}

    def _load(self) -> tuple[Any, Any, torch.device]:
        from molw2s.encoders.device import resolve_device
        from molw2s.encoders.model_files import load_encoder

        model, tokenizer = load_encoder(self.path)
        device = resolve_device(self.device)
        return model.to(device).eval(), tokenizer, device  # type: ignore[arg-type]


def pool(hidden: torch.Tensor, attention: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """[CLS] vector or masked mean over real tokens: (batch, length, d) -> (batch, d)."""
    if pooling == "cls":
        return hidden[:, 0]
    weights = attention.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1)


_ECFP_SHORT = re.compile(r"^ecfp(\d+)(?:-(\d+))?(-counts)?$")


def parse_encoder_spec(
    spec: str,
    *,
    pooling: Pooling = "cls",
    layer: int = -1,
    batch_size: int = 64,
    device: str = "auto",
    precision: Precision = "float32",
) -> Encoder:
    """An encoder from its spec string (see the module docstring); ``pooling``, ``layer``,
    ``batch_size``, ``device`` and ``precision`` apply to checkpoints."""
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    text = spec.strip()
    lower = text.lower()
    if lower.startswith("bert:") or Path(text).expanduser().is_dir():
        path = Path(text[5:] if lower.startswith("bert:") else text).expanduser()
        if not (path / "model.safetensors").is_file():
            raise ConfigError(f"encoder {spec!r}: {path} is not a pretrained model directory (no model.safetensors)")
        return TransformerEncoder(
            path, pooling=pooling, layer=layer, batch_size=batch_size, device=device, precision=precision
        )
    if match := _ECFP_SHORT.match(lower):
        diameter, nbits, counts = match.groups()
        return _ecfp(spec, int(diameter), int(nbits or 2048), bool(counts))
    if lower.startswith("ecfp:"):
        opts = _keywords(spec, lower[5:], {"radius", "nbits", "counts"})
        return ECFPEncoder(
            int(opts.get("radius", 2)), int(opts.get("nbits", 2048)), opts.get("counts", "false") == "true"
        )
    if lower == "maccs":
        return MACCSEncoder()
    if lower in ("rdkit2d", "rdkit_desc", "rdkit2d-raw"):
        return RDKitDescriptorEncoder(raw=lower.endswith("-raw"))
    raise ConfigError(
        f"unknown encoder {spec!r}; use bert:PATH (or a model directory), ecfp4-2048, "
        "ecfp:radius=2,nbits=2048, maccs, rdkit2d or rdkit2d-raw"
    )


def _ecfp(spec: str, diameter: int, nbits: int, counts: bool) -> ECFPEncoder:
    if diameter % 2 or diameter < 0 or nbits < 1:
        raise ConfigError(f"encoder {spec!r}: ECFP needs an even diameter (ecfp4 = radius 2) and nbits >= 1")
    return ECFPEncoder(diameter // 2, nbits, counts)


def _keywords(spec: str, body: str, allowed: set[str]) -> dict[str, str]:
    opts = {}
    for part in filter(None, body.split(",")):
        key, _, value = part.partition("=")
        if key not in allowed or not value:
            raise ConfigError(f"encoder {spec!r}: bad option {part!r}; allowed: {sorted(allowed)} as key=value")
        opts[key] = value
    return opts


@dataclass
class TaskEmbedding:
    """Representations of a task with where they are cached and what was counted."""

    values: np.ndarray
    path: Path | None
    from_cache: bool
    info: dict[str, Any]


def embed_task(
    encoder_spec: str | Encoder,
    task: Task | str,
    *,
    pooling: Pooling = "cls",
    layer: int = -1,
    batch_size: int = 64,
    precision: Precision = "float32",
    cache: bool = True,
    data_dir: str | Path | None = None,
    progress: bool = False,
) -> np.ndarray:
    """(n_molecules, d) float32 representations of ``task`` (a Task or a task name).

    ``encoder_spec``: a spec string (see the module docstring) or an encoder; ``pooling``,
    ``layer``, ``batch_size`` and ``precision`` apply to spec strings of checkpoints (see
    :func:`embed_tasks` for several tasks with one loaded model). Cached: see
    :func:`compute_task_embedding`.
    """
    from molw2s.data.tasks import load_task

    encoder = (
        parse_encoder_spec(encoder_spec, pooling=pooling, layer=layer, batch_size=batch_size, precision=precision)
        if isinstance(encoder_spec, str)
        else encoder_spec
    )
    loaded = load_task(task, data_dir=data_dir) if isinstance(task, str) else task
    return compute_task_embedding(encoder, loaded, cache=cache, progress=progress).values


def embed_tasks(
    encoder_spec: str,
    tasks: Sequence[Task],
    *,
    pooling: Pooling = "cls",
    layer: int = -1,
    batch_size: int = 64,
    precision: Precision = "float32",
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Representations of every task by one encoder, by task name: a checkpoint is loaded
    and hashed once for all of them (and released with the encoder afterwards). Cached as
    :func:`embed_task`."""
    encoder = parse_encoder_spec(encoder_spec, pooling=pooling, layer=layer, batch_size=batch_size, precision=precision)
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
    identity = encoder.identity()
    key = content_hash("embedding-v2", identity, task.smiles)
    path = embedding_cache_path(key)
    cached = load_npy_checked(path) if cache else None
    if cached is not None:  # the info describes this task, whichever computed the array
        return TaskEmbedding(cached[0], path, True, {**cached[1], "task": task.name, "source": str(task.source)})
    values = encoder.encode(task.smiles, progress=progress)
    info = {
        "encoder": encoder.name,
        "identity": identity,
        "task": task.name,
        "source": str(task.source),
        "shape": list(values.shape),
        "counts": getattr(encoder, "last_counts", {}),
    }
    if not cache:
        return TaskEmbedding(values, None, False, info)
    save_npy_checked(path, values, info)
    return TaskEmbedding(values, path, False, info)


def embedding_cache_path(key: str) -> Path:
    """Where the embedding with content hash ``key`` lives."""
    return cache_dir() / "embeddings" / f"{key}.npy"
