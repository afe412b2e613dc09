"""Crash-safe checkpoints: HF model files plus optimiser, scheduler and RNG state.

A checkpoint is a directory written under a temporary name and renamed into place; its
``MANIFEST.json`` (sha256 and size of every file) is written last. A directory whose
manifest is missing or does not match its files is partial or corrupt: it is reported
and skipped, and training resumes from the previous one. Tensors go to safetensors,
everything else to JSON; nothing is pickled, nothing is ``torch.load``-ed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from molw2s.encoders.tokenizer import save_tokenizer
from molw2s.io import file_digest, write_json_atomic

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

    from molw2s.encoders.model import MolBertForPretraining

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"
STATE_FILE = "trainer_state.json"
STEP_PREFIX = "step-"


def step_dir_name(step: int) -> str:
    """``step-00001200``: names sort in step order."""
    return f"{STEP_PREFIX}{step:08d}"


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
    return json.loads((Path(directory) / MANIFEST).read_text())


def latest_valid_checkpoint(root: str | Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest verified ``step-*`` directory under ``root`` and the ones skipped (with why)."""
    root = Path(root)
    skipped: list[tuple[Path, str]] = []
    candidates = sorted(root.glob(f"{STEP_PREFIX}*"), reverse=True) if root.is_dir() else []
    for path in candidates:
        reason = verify_dir(path)
        if reason is None:
            return path, skipped
        log.warning("skipping checkpoint %s: %s", path, reason)
        skipped.append((path, reason))
    return None, skipped


def prune_checkpoints(root: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` verified ``step-*`` directories and stale temp dirs."""
    root = Path(root)
    steps = sorted(p for p in root.glob(f"{STEP_PREFIX}*") if verify_dir(p) is None)
    for path in steps[: max(0, len(steps) - keep)]:
        shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(f".{STEP_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def save_model_files(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, directory: Path) -> None:
    """HF format without progress bars: ``config.json``, ``model.safetensors``, tokenizer."""
    model.config.save_pretrained(str(directory))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(directory / MODEL_FILE), metadata={"format": "pt"})
    save_tokenizer(tokenizer, directory)


def load_pretrained(directory: str | Path) -> tuple[MolBertForPretraining, PreTrainedTokenizerFast]:
    """Model (in eval mode) and tokenizer of an HF directory written by this package.

    Equivalent to ``MolBertForPretraining.from_pretrained`` + ``AutoTokenizer``, but quiet
    and strict (every weight must match).
    """
    from transformers import BertConfig

    from molw2s.encoders.model import MolBertForPretraining
    from molw2s.encoders.tokenizer import load_tokenizer

    directory = Path(directory)
    model = MolBertForPretraining(BertConfig.from_pretrained(str(directory)))
    load_model_weights(model, directory)
    return model.eval(), load_tokenizer(directory)


def load_model_weights(model: torch.nn.Module, directory: str | Path) -> None:
    """Load ``model.safetensors`` into ``model`` (strict: every key must match)."""
    model.load_state_dict(load_file(str(Path(directory) / MODEL_FILE)), strict=True)


def flatten_optimizer_state(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into safetensors-ready tensors and JSON-ready rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in state_dict["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer_state`."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for pid, entries in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(entries)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's RNG states: torch (CPU, CUDA) as tensors, python and numpy as JSON."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"torch_cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, pstate, gauss = random.getstate()
    meta = {
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "python": [version, list(pstate), gauss],
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, pstate, gauss = meta["python"]
    random.setstate((version, tuple(pstate), gauss))


def save_training_checkpoint(
    directory: Path,
    *,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict[str, Any],
    rng: list[tuple[dict[str, torch.Tensor], dict[str, Any]]],
) -> Path:
    """Write a resumable checkpoint (``rng``: one captured state per data-parallel rank)."""

    def fill(tmp: Path) -> None:
        save_model_files(model, tokenizer, tmp)
        opt_tensors, opt_meta = flatten_optimizer_state(optimizer.state_dict())
        save_file(opt_tensors, str(tmp / OPTIMIZER_FILE))
        save_file({f"rank{r}.{k}": v for r, (t, _) in enumerate(rng) for k, v in t.items()}, str(tmp / RNG_FILE))
        payload = {
            **state,
            "optimizer": opt_meta,
            "scheduler": scheduler.state_dict(),
            "rng": [meta for _, meta in rng],
        }
        (tmp / STATE_FILE).write_text(json.dumps(payload, indent=1) + "\n")

    meta = {"kind": "training-checkpoint", "step": state["step"], "config_hash": state["config_hash"]}
    return write_verified_dir(directory, fill, meta)


def load_training_checkpoint(
    directory: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rank: int = 0,
) -> dict[str, Any]:
    """Restore model, optimiser, scheduler and this rank's RNG; return the trainer state."""
    payload = json.loads((directory / STATE_FILE).read_text())
    load_model_weights(model, directory)
    # load_state_dict moves each state tensor to its parameter's device itself
    opt_tensors = load_file(str(directory / OPTIMIZER_FILE))
    optimizer.load_state_dict(unflatten_optimizer_state(opt_tensors, payload.pop("optimizer")))
    scheduler.load_state_dict(payload.pop("scheduler"))
    rng_tensors = load_file(str(directory / RNG_FILE))
    prefix = f"rank{rank}."
    mine = {k[len(prefix) :]: v for k, v in rng_tensors.items() if k.startswith(prefix)}
    rng_meta = payload.pop("rng")
    if mine and rank < len(rng_meta):
        restore_rng(mine, rng_meta[rank])
    else:
        log.warning("checkpoint %s has no RNG state for rank %d (world size changed?)", directory, rank)
    return payload
