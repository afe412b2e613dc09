"""Crash-safe training checkpoints: HF model files plus optimiser, scheduler and RNG state.

A checkpoint is a verified directory (:func:`molw2s.io.write_verified_dir`): written under
a temporary name and renamed into place, its ``MANIFEST.json`` (sha256 and size of every
file) written last. A directory whose manifest is missing or does not match its files
is partial or corrupt: it is reported and skipped, and training resumes from the previous
one. Tensors go to safetensors, everything else to JSON; nothing is pickled, nothing is ``torch.load``-ed.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from molw2s.encoders.model_files import MODEL_FILE, save_model
from molw2s.io import verify_dir, write_verified_dir
from molw2s.training import restore_torch_rng, torch_rng_state

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

log = logging.getLogger(__name__)

OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"
STATE_FILE = "trainer_state.json"
STEP_PREFIX = "step-"


def step_dir_name(step: int) -> str:
    """``step-00001200``: names sort in step order."""
    return f"{STEP_PREFIX}{step:08d}"


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
    tensors = torch_rng_state()
    state = np.random.get_state(legacy=True)
    assert isinstance(state, tuple)  # the global RandomState is an MT19937, whose legacy state is a tuple
    kind, keys, pos, has_gauss, cached = state
    version, pstate, gauss = random.getstate()
    meta = {
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "python": [version, list(pstate), gauss],
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    restore_torch_rng(tensors)
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
        save_model(model, tokenizer, tmp)
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
    payload: dict[str, Any] = json.loads((directory / STATE_FILE).read_text())
    model.load_state_dict(load_file(str(directory / MODEL_FILE)), strict=True)
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
