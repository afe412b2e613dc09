"""Finetune an encoder and a regression head on one task (a training and a validation part).

One epoch = one pass over the training part in an order drawn from ``(seed, epoch)``;
dropout draws from torch's generator seeded with ``seed`` and saved with the state, so a
run killed between epochs resumes from ``state_dir`` and ends with the same weights as an
uninterrupted one. Labels are standardised with the training part's mean and std; the
validation error and every prediction are in the labels' original units. Losses stay on
the device during an epoch and are checked once per epoch: a non-finite loss stops
training with the step where it happened, keeping the last good state.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from molw2s.encoders.device import resolve_device
from molw2s.encoders.model_files import load_encoder
from molw2s.encoders.padding import pad_batch
from molw2s.encoders.tokenizer import encode_smiles
from molw2s.errors import DataError, TrainingError
from molw2s.finetuning.config import FinetuneSettings
from molw2s.finetuning.model import RegressionModel
from molw2s.io import atomic_path, content_hash, file_digest
from molw2s.tracking import NullLogger, Tracking, open_logger

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

log = logging.getLogger(__name__)

STATE_FILE = "finetune_state.pt"


@dataclass(frozen=True)
class LabelledSmiles:
    """Molecules and their labels (original units)."""

    smiles: list[str]
    y: np.ndarray

    @classmethod
    def of(cls, smiles: Sequence[str], y: Sequence[float] | np.ndarray) -> LabelledSmiles:
        """Checked: as many labels as molecules, all finite."""
        labels = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(labels) != len(smiles):
            raise DataError(f"{len(smiles)} molecules but {len(labels)} labels")
        if not np.isfinite(labels).all():
            raise DataError(f"{int((~np.isfinite(labels)).sum())} labels are NaN or infinite")
        return cls(list(smiles), labels)

    def __len__(self) -> int:
        return len(self.smiles)


@dataclass
class FinetunedRegressor:
    """A finetuned model (best validation epoch restored) that predicts in original units."""

    model: RegressionModel
    tokenizer: PreTrainedTokenizerFast
    label_mean: float
    label_std: float
    device: torch.device
    bf16: bool
    best_epoch: int
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)

    def predict(self, smiles: Sequence[str], *, batch_size: int = 128) -> np.ndarray:
        """(n,) float64 predictions in the labels' original units, in input order."""
        ids = encode_smiles(self.tokenizer, smiles, max_length=self.model.encoder.config.max_position_embeddings).ids
        raw = _predict_standardised(self.model, ids, self.tokenizer.pad_token_id, self.device, self.bf16, batch_size)
        return raw * self.label_std + self.label_mean


def finetune_regressor(
    checkpoint: str | Path,
    train: LabelledSmiles,
    valid: LabelledSmiles,
    settings: FinetuneSettings | None = None,
    *,
    seed: int | None = None,
    state_dir: str | Path | None = None,
    progress: bool = False,
    tracking: Tracking = "none",
    log_dir: str | Path | None = None,
) -> FinetunedRegressor:
    """Finetune the encoder of ``checkpoint`` (any directory :func:`load_encoder` reads) with
    a new regression head on ``train``, early-stopped on ``valid``.

    ``seed`` (default ``settings.seed``) fixes the head's initialisation, the batch order
    and dropout. With ``state_dir`` the training state is saved after every epoch and a
    rerun with the same inputs resumes from it. With ``log_dir``, each epoch's training loss,
    validation RMSE and learning rate go to ``tracking`` (:mod:`molw2s.tracking`) there.
    """
    settings = settings or FinetuneSettings()
    seed = settings.seed if seed is None else seed
    _check_parts(train, valid)
    mean, std = float(train.y.mean()), float(train.y.std())
    torch.manual_seed(seed)
    encoder, tokenizer = load_encoder(checkpoint)
    model = RegressionModel(encoder, pooling=settings.pooling, dropout=settings.dropout)
    model.freeze(settings.freeze)
    device = resolve_device(settings.device)
    model.to(device)
    bf16 = settings.bf16 and device.type == "cuda"
    max_length = encoder.config.max_position_embeddings
    train_ids = encode_smiles(tokenizer, train.smiles, max_length=max_length).ids
    valid_ids = encode_smiles(tokenizer, valid.smiles, max_length=max_length).ids
    targets = torch.as_tensor((train.y - mean) / std, dtype=torch.float32)

    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    optimizer = _optimizer(model, settings, device)
    scheduler = _schedule(optimizer, settings, steps_per_epoch)
    key = content_hash(
        "finetune-v1", _checkpoint_digest(checkpoint), settings.model_dump(), seed, train.smiles, train.y, valid.smiles
    )
    state_path = None if state_dir is None else Path(state_dir) / STATE_FILE
    state = _load_state(state_path, key)
    history: list[dict[str, float]] = []
    best: dict[str, torch.Tensor] = {}
    best_epoch, best_mse, stale, start = 0, math.inf, 0, 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        history, best = state["history"], state["best"]
        best_epoch, best_mse, stale, start = state["best_epoch"], state["best_mse"], state["stale"], state["epoch"]
        log.info("resuming finetuning after epoch %d from %s", start, state_path)
    pad_id = tokenizer.pad_token_id
    from tqdm.auto import tqdm

    stopped_early = state is not None and state["stopped"]
    remaining = range(start, start if stopped_early else settings.epochs)
    bar = tqdm(remaining, desc="finetune", unit="epoch", disable=not progress, leave=False)
    tracker = NullLogger() if log_dir is None else open_logger(tracking, log_dir, start_step=start + 1)
    try:
        for epoch in bar:
            model.train()
            order = np.random.default_rng([seed, epoch]).permutation(len(train))
            losses = []
            for b in range(steps_per_epoch):
                rows = order[b * settings.batch_size : (b + 1) * settings.batch_size]
                ids, attention = pad_batch([train_ids[i] for i in rows], pad_id)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    pred = model(ids.to(device, non_blocking=True), attention.to(device, non_blocking=True))
                loss = torch.nn.functional.mse_loss(pred.float(), targets[rows].to(device, non_blocking=True))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                if settings.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                optimizer.step()
                scheduler.step()
                losses.append(loss.detach())
            epoch_losses = torch.stack(losses).float().cpu()
            if not torch.isfinite(epoch_losses).all():
                first = int((~torch.isfinite(epoch_losses)).nonzero()[0])
                kept = (
                    f"the state after epoch {epoch} is kept in {state_path}"
                    if state_path is not None and state_path.is_file()
                    else "no finished epoch was saved"
                )
                raise TrainingError(
                    f"finetuning diverged: non-finite loss at step {epoch * steps_per_epoch + first + 1} "
                    f"(epoch {epoch + 1}, batch {first + 1}); {kept}. Lower training.lr or check the labels."
                )
            valid_pred = _predict_standardised(model, valid_ids, pad_id, device, bf16, 2 * settings.batch_size)
            valid_mse = float(np.mean((valid_pred * std + mean - valid.y) ** 2))
            history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": float(epoch_losses.mean()),
                    "valid_rmse": math.sqrt(valid_mse),
                    "lr": float(scheduler.get_last_lr()[0]),
                }
            )
            bar.set_postfix(valid_rmse=f"{math.sqrt(valid_mse):.3f}")
            tracker.log_scalars(epoch + 1, {f"finetune/{k}": v for k, v in history[-1].items() if k != "epoch"})
            if valid_mse < best_mse:
                best_mse, best_epoch, stale = valid_mse, epoch + 1, 0
                best = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                stale += 1
            stopped_early = settings.patience is not None and stale >= settings.patience
            if state_path is not None:
                _save_state(
                    state_path,
                    key=key,
                    epoch=epoch + 1,
                    stopped=stopped_early,
                    model=model.state_dict(),
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict(),
                    rng=torch.get_rng_state(),
                    history=history,
                    best=best,
                    best_epoch=best_epoch,
                    best_mse=best_mse,
                    stale=stale,
                )
            if stopped_early:
                break
    finally:
        tracker.close()
    model.load_state_dict(best)
    model.eval()
    return FinetunedRegressor(model, tokenizer, mean, std, device, bf16, best_epoch, stopped_early, history)


def _check_parts(train: LabelledSmiles, valid: LabelledSmiles) -> None:
    if len(train) < 2:
        raise DataError(f"finetuning needs at least 2 training molecules, got {len(train)}")
    if len(valid) == 0:
        raise DataError(
            "finetuning needs a validation part for early stopping and choosing the best epoch, and this "
            "split has none: use split fractions with a validation part (e.g. splits.frac=[0.8,0.1,0.1])"
        )
    if float(train.y.std()) == 0.0:
        raise DataError(f"the training labels are constant ({train.y[0]:g}): there is nothing to learn")


def _optimizer(model: RegressionModel, settings: FinetuneSettings, device: torch.device) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and LayerNorm weights (the BERT convention)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=settings.lr, fused=device.type == "cuda")


def _schedule(
    optimizer: torch.optim.Optimizer, settings: FinetuneSettings, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup_frac`` of all steps, then linear decay to zero."""
    total = settings.epochs * steps_per_epoch
    warmup = int(settings.warmup_frac * total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _predict_standardised(
    model: RegressionModel, ids: list[list[int]], pad_id: int, device: torch.device, bf16: bool, batch_size: int
) -> np.ndarray:
    """Predictions in standardised units, computed in length-sorted batches, in input order."""
    model.eval()
    order = np.argsort([len(s) for s in ids], kind="stable")
    out = np.zeros(len(ids), dtype=np.float64)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch, attention = pad_batch([ids[i] for i in rows], pad_id)
            out[rows] = model(batch.to(device), attention.to(device)).float().cpu().numpy()
    return out


def _checkpoint_digest(checkpoint: str | Path) -> str:
    return file_digest(Path(checkpoint) / "model.safetensors", "sha256")


def _save_state(path: Path, **state: Any) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_state(path: Path | None, key: str) -> dict[str, Any] | None:
    """A saved state for exactly these inputs, or None (a state of other inputs is ignored)."""
    if path is None or not path.is_file():
        return None
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file: start over rather than fail
        log.warning("%s: unreadable finetuning state (%s); starting over", path, exc)
        return None
    if state.get("key") != key:
        log.warning("%s: finetuning state of other inputs or settings; starting over", path)
        return None
    return state
