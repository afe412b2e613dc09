"""Finetune an encoder and a regression head on one task, or on several tasks at once (a
training and a validation part).

Several tasks share the encoder and have one linear output each: every labelled molecule
says which output its label belongs to (``LabelledSmiles.output``), each output's labels
are standardised with its own training mean and std, and the loss is the masked MSE with
the outputs weighted equally (each molecule weighted N / (K n_k) for the K outputs present and
n_k molecules of its output among N, so a uniform batch estimates the mean over outputs of
each output's MSE; one output: the plain MSE). The validation score that picks the best
epoch is the same mean over outputs of the validation MSE in standardised units.

One epoch = one pass over the training part in an order drawn from ``(seed, epoch)``;
dropout draws from torch's generator seeded with ``seed`` and saved with the state, so a
run killed between epochs resumes from ``state_dir`` and ends with the same weights as an
uninterrupted one. Validation errors and every prediction are in the labels' original
units. Losses stay on the device during an epoch and are checked once per epoch: a
non-finite loss stops training with the step where it happened, keeping the last good state.
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
from molw2s.io import array_digest, atomic_path, content_hash, file_digest
from molw2s.tracking import NullLogger, Tracking, open_logger

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

log = logging.getLogger(__name__)

STATE_FILE = "finetune_state.pt"


@dataclass(frozen=True)
class LabelledSmiles:
    """Molecules, their labels (original units) and the output each label belongs to
    (0 ... K-1; all 0 for one task)."""

    smiles: list[str]
    y: np.ndarray
    output: np.ndarray

    @classmethod
    def of(
        cls, smiles: Sequence[str], y: Sequence[float] | np.ndarray, output: Sequence[int] | np.ndarray | None = None
    ) -> LabelledSmiles:
        """Checked: as many labels (and output indices, default 0) as molecules, labels finite,
        output indices >= 0."""
        labels = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(labels) != len(smiles):
            raise DataError(f"{len(smiles)} molecules but {len(labels)} labels")
        if not np.isfinite(labels).all():
            raise DataError(f"{int((~np.isfinite(labels)).sum())} labels are NaN or infinite")
        outputs = np.zeros(len(labels), dtype=np.int64) if output is None else np.asarray(output, dtype=np.int64)
        if outputs.shape != labels.shape:
            raise DataError(f"{len(labels)} labels but {outputs.size} output indices")
        if len(outputs) and int(outputs.min()) < 0:
            raise DataError(f"output indices must be >= 0, got {int(outputs.min())}")
        return cls(list(smiles), labels, outputs)

    def __len__(self) -> int:
        return len(self.smiles)


@dataclass
class FinetunedRegressor:
    """A finetuned model (best validation epoch restored) that predicts in original units;
    ``label_mean`` / ``label_std`` hold one standardisation per output."""

    model: RegressionModel
    tokenizer: PreTrainedTokenizerFast
    label_mean: np.ndarray
    label_std: np.ndarray
    device: torch.device
    bf16: bool
    best_epoch: int
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def n_outputs(self) -> int:
        """How many outputs (tasks) the head has."""
        return len(self.label_mean)

    def predict(self, smiles: Sequence[str], *, output: int = 0, batch_size: int = 128) -> np.ndarray:
        """(n,) float64 predictions of ``output`` in its labels' original units, in input order."""
        if not 0 <= output < self.n_outputs:
            raise DataError(f"output {output} does not exist: the model has {self.n_outputs}")
        ids = encode_smiles(self.tokenizer, smiles, max_length=self.model.encoder.config.max_position_embeddings).ids
        raw = _predict_standardised(self.model, ids, self.tokenizer.pad_token_id, self.device, self.bf16, batch_size)
        pred: np.ndarray = raw[:, output] * self.label_std[output] + self.label_mean[output]
        return pred


def finetune_regressor(
    checkpoint: str | Path,
    train: LabelledSmiles,
    valid: LabelledSmiles,
    settings: FinetuneSettings | None = None,
    *,
    seed: int | None = None,
    start_from: FinetunedRegressor | None = None,
    anchor: float = 0.0,
    state_dir: str | Path | None = None,
    progress: bool = False,
    tracking: Tracking = "none",
    log_dir: str | Path | None = None,
) -> FinetunedRegressor:
    """Finetune the encoder of ``checkpoint`` (any directory :func:`load_encoder` reads) with
    a new regression head of one output per output index in ``train`` (see the module
    doc), early-stopped on ``valid``.

    ``seed`` (default ``settings.seed``) fixes the head's initialisation, the batch order
    and dropout. ``start_from`` (a model finetuned from the same checkpoint) continues from
    its weights and keeps its label standardisation, and ``anchor`` > 0 adds
    ``anchor * ||theta - theta_start||^2`` over the trained parameters to the loss: stage 2
    of two-stage training. With ``state_dir`` the training state is saved after every epoch
    and a rerun with the same inputs resumes from it. With ``log_dir``, each epoch's
    training loss, validation RMSE and learning rate go to ``tracking``
    (:mod:`molw2s.tracking`) there.
    """
    settings = settings or FinetuneSettings()
    seed = settings.seed if seed is None else seed
    n_outputs = _check_parts(train, valid, start_from)
    if start_from is None:
        mean, std = _label_stats(train, n_outputs)
    else:
        mean, std = start_from.label_mean.copy(), start_from.label_std.copy()
    torch.manual_seed(seed)
    encoder, tokenizer = load_encoder(checkpoint)
    model = RegressionModel(encoder, pooling=settings.pooling, dropout=settings.dropout, n_outputs=n_outputs)
    if start_from is not None:
        model.load_state_dict({k: v.detach().cpu() for k, v in start_from.model.state_dict().items()})
    model.freeze(settings.freeze)
    device = resolve_device(settings.device)
    model.to(device)
    anchors = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad} if anchor > 0 else {}
    bf16 = settings.bf16 and device.type == "cuda"
    max_length = encoder.config.max_position_embeddings
    train_ids = encode_smiles(tokenizer, train.smiles, max_length=max_length).ids
    valid_ids = encode_smiles(tokenizer, valid.smiles, max_length=max_length).ids
    targets = torch.as_tensor((train.y - mean[train.output]) / std[train.output], dtype=torch.float32)
    weights = torch.as_tensor(output_weights(train.output), dtype=torch.float32)
    outputs = torch.as_tensor(train.output)

    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    optimizer = _optimizer(model, settings, device)
    scheduler = _schedule(optimizer, settings, steps_per_epoch)
    key = content_hash(
        "finetune-v2",
        _checkpoint_digest(checkpoint),
        settings.model_dump(),
        seed,
        [train.smiles, train.y, train.output],
        [valid.smiles, valid.y, valid.output],
        None if start_from is None else [_weights_digest(start_from.model), mean, std],
        anchor,
    )
    state_path = None if state_dir is None else Path(state_dir) / STATE_FILE
    state = _load_state(state_path, key)
    history: list[dict[str, float]] = []
    best: dict[str, torch.Tensor] = {}
    best_epoch, best_score, stale, start = 0, math.inf, 0, 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        history, best = state["history"], state["best"]
        best_epoch, best_score, stale, start = state["best_epoch"], state["best_score"], state["stale"], state["epoch"]
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
                loss = masked_mse(
                    pred.float(),
                    outputs[rows].to(device, non_blocking=True),
                    targets[rows].to(device, non_blocking=True),
                    weights[rows].to(device, non_blocking=True),
                )
                if anchors:
                    pull = sum(torch.sum((p - anchors[n]) ** 2) for n, p in model.named_parameters() if n in anchors)
                    loss = loss + anchor * pull
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
            raw = _predict_standardised(model, valid_ids, pad_id, device, bf16, 2 * settings.batch_size)
            score, rmse = _validation(raw, valid, mean, std)
            history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": float(epoch_losses.mean()),
                    **rmse,
                    **({"valid_score": score} if n_outputs > 1 else {}),
                    "lr": float(scheduler.get_last_lr()[0]),
                }
            )
            bar.set_postfix(valid_score=f"{score:.3f}")
            tracker.log_scalars(epoch + 1, {f"finetune/{k}": v for k, v in history[-1].items() if k != "epoch"})
            if score < best_score:
                best_score, best_epoch, stale = score, epoch + 1, 0
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
                    best_score=best_score,
                    stale=stale,
                )
            if stopped_early:
                break
    finally:
        tracker.close()
    model.load_state_dict(best)
    model.eval()
    return FinetunedRegressor(model, tokenizer, mean, std, device, bf16, best_epoch, stopped_early, history)


def output_weights(output: np.ndarray) -> np.ndarray:
    """Per-molecule loss weights N / (K n_k), K the outputs present and n_k the molecules of
    output k among N: the weighted mean is the mean over those outputs of each one's MSE
    (a stage 2 trained on some outputs only weighs them like a model that has no others)."""
    counts = np.bincount(output)
    weights: np.ndarray = len(output) / (np.count_nonzero(counts) * counts[output])
    return weights


def masked_mse(pred: torch.Tensor, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """mean_i weight_i (pred[i, output_i] - target_i)^2: with :func:`output_weights` over the
    whole training part, the mean over the outputs of each output's MSE."""
    picked = pred.gather(1, output[:, None]).squeeze(1)
    return torch.mean(weight * (picked - target) ** 2)


def _check_parts(train: LabelledSmiles, valid: LabelledSmiles, start_from: FinetunedRegressor | None) -> int:
    """The number of outputs, after checking both parts cover every output usefully."""
    if len(train) < 2:
        raise DataError(f"finetuning needs at least 2 training molecules, got {len(train)}")
    if len(valid) == 0:
        raise DataError(
            "finetuning needs a validation part for early stopping and choosing the best epoch, and this "
            "split has none: use split fractions with a validation part (e.g. splits.frac=[0.8,0.1,0.1])"
        )
    n_outputs = int(max(train.output.max(), valid.output.max())) + 1
    if start_from is not None:
        if n_outputs > start_from.n_outputs:
            raise DataError(f"output {n_outputs - 1} does not exist: the starting model has {start_from.n_outputs}")
        return start_from.n_outputs
    for k in range(n_outputs):
        labels = train.y[train.output == k]
        if len(labels) < 2:
            raise DataError(f"output {k} has {len(labels)} training labels; each output needs at least 2")
        if float(labels.std()) == 0.0:
            what = "the training labels" if n_outputs == 1 else f"the training labels of output {k}"
            raise DataError(f"{what} are constant ({labels[0]:g}): there is nothing to learn")
    return n_outputs


def _label_stats(train: LabelledSmiles, n_outputs: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output mean and std of the training labels."""
    mean = np.array([train.y[train.output == k].mean() for k in range(n_outputs)])
    std = np.array([train.y[train.output == k].std() for k in range(n_outputs)])
    return mean, std


def _validation(
    raw: np.ndarray, valid: LabelledSmiles, mean: np.ndarray, std: np.ndarray
) -> tuple[float, dict[str, float]]:
    """The validation score (mean over outputs present of the MSE in standardised units) and
    the RMSE in original units (``valid_rmse``; per output ``valid_rmse_<k>`` when several)."""
    picked = raw[np.arange(len(valid)), valid.output]
    squared = (picked * std[valid.output] + mean[valid.output] - valid.y) ** 2
    present = np.unique(valid.output)
    mses = {int(k): float(squared[valid.output == k].mean()) for k in present}
    score = float(np.mean([mses[k] / std[k] ** 2 for k in mses]))
    if len(mean) == 1:
        return score, {"valid_rmse": math.sqrt(mses[0])}
    return score, {f"valid_rmse_{k}": math.sqrt(v) for k, v in mses.items()}


def _weights_digest(model: torch.nn.Module) -> str:
    """A digest of a model's state dict (names and float32 values, in order)."""
    return content_hash(
        [[name, array_digest(t.detach().float().cpu().numpy())] for name, t in model.state_dict().items()]
    )


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
    """(n, outputs) predictions in standardised units, computed in length-sorted batches, in
    input order."""
    model.eval()
    order = np.argsort([len(s) for s in ids], kind="stable")
    out = np.zeros((len(ids), model.head.out_features), dtype=np.float64)
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
