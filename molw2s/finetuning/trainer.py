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
dropout draws from torch's generators seeded with ``seed``, whose states (CPU and every
CUDA device) are saved with the state, so a run killed between epochs resumes from
``state_dir`` and ends with the same weights as an uninterrupted one. Validation errors and
every prediction are in the labels' original units. Losses stay on the device during an
epoch and are checked once per epoch: a non-finite loss stops training with the step where
it happened, keeping the last good state. On CUDA, batches go through pinned memory and are
copied without waiting; nothing in a training step waits for the device. AdamW and its
schedule: :mod:`molw2s.training`.
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
from molw2s.encoders.padding import pad_batch
from molw2s.encoders.transformer import TransformerFiles, transformer_files
from molw2s.errors import DataError, TrainingError
from molw2s.finetuning.config import FinetuneSettings
from molw2s.finetuning.model import RegressionModel
from molw2s.io import array_digest, atomic_path, content_hash
from molw2s.progress import show_progress
from molw2s.tracking import NullLogger, ScalarLogger, Tracking, open_logger
from molw2s.training import make_adamw, restore_torch_rng, torch_rng_state, warmup_decay_schedule

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
    files: TransformerFiles  # how the model's tokenizer reads SMILES
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
        ids = token_ids(self.files, self.model, self.tokenizer, smiles)
        raw = _predict_standardised(self.model, ids, self.tokenizer.pad_token_id, self.device, self.bf16, batch_size)
        pred: np.ndarray = raw[:, output] * self.label_std[output] + self.label_mean[output]
        return pred


def token_ids(
    files: TransformerFiles, model: RegressionModel, tokenizer: PreTrainedTokenizerFast, smiles: Sequence[str]
) -> list[list[int]]:
    """The token ids of ``smiles`` as ``files``' tokenizer reads them, at most as long as the encoder reads."""
    return files.tokenize(tokenizer, smiles, max_length=files.max_length(model.encoder, tokenizer)).ids


def finetune_regressor(
    checkpoint: str | Path | TransformerFiles,
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
    """Finetune the encoder of ``checkpoint`` (a ``bert:`` checkpoint directory, or any
    :class:`~molw2s.encoders.transformer.TransformerFiles`: an ``hf:`` model, read with its
    own tokenizer) with a new regression head of one output per output index in ``train``
    (see the module doc), early-stopped on ``valid``.

    ``seed`` (default ``settings.seed``) fixes the head's initialisation, the batch order
    and dropout. ``start_from`` (a model finetuned from the same checkpoint) continues from
    its weights and keeps its label standardisation, and ``anchor`` > 0 adds
    ``anchor * ||theta - theta_start||^2`` over the trained parameters to the loss: stage 2
    of two-stage training. With ``state_dir`` the training state is saved after every epoch
    and a rerun with the same inputs resumes from it. With ``log_dir``, each epoch's
    training loss, validation RMSE and learning rate go to ``tracking``
    (:mod:`molw2s.tracking`) there.
    """
    run = RegressorTrainer(
        checkpoint,
        train,
        valid,
        settings or FinetuneSettings(),
        seed=seed,
        start_from=start_from,
        anchor=anchor,
        state_dir=state_dir,
    )
    start = run.resume()
    tracker = NullLogger() if log_dir is None else open_logger(tracking, log_dir, start_step=start + 1)
    try:
        run.train(tracker, progress=progress)
    finally:
        tracker.close()
    return run.result()


class RegressorTrainer:
    """Finetunes one regression model (the steps of :func:`finetune_regressor`, its entry
    point): setup here, :meth:`resume`, :meth:`train` (epochs of :meth:`train_step`, each
    checked for a finite loss, validated and saved), :meth:`result`."""

    def __init__(
        self,
        checkpoint: str | Path | TransformerFiles,
        train: LabelledSmiles,
        valid: LabelledSmiles,
        settings: FinetuneSettings,
        *,
        seed: int | None = None,
        start_from: FinetunedRegressor | None = None,
        anchor: float = 0.0,
        state_dir: str | Path | None = None,
    ) -> None:
        self.settings, self.train_part, self.valid_part, self.anchor = settings, train, valid, anchor
        self.seed = settings.seed if seed is None else seed
        self.n_outputs = _check_parts(train, valid, start_from)
        if start_from is None:
            self.mean, self.std = _label_stats(train, self.n_outputs)
        else:
            self.mean, self.std = start_from.label_mean.copy(), start_from.label_std.copy()
        self.files = transformer_files(checkpoint)
        self.model, self.tokenizer = _initial_model(self.files, settings, self.seed, self.n_outputs, start_from)
        self.device = resolve_device(settings.device)
        self.model.to(self.device)
        self.anchors = (
            {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad} if anchor > 0 else {}
        )
        self.bf16 = settings.bf16 and self.device.type == "cuda"
        self.pad_id: int = self.tokenizer.pad_token_id
        self.train_ids = token_ids(self.files, self.model, self.tokenizer, train.smiles)
        self.valid_ids = token_ids(self.files, self.model, self.tokenizer, valid.smiles)
        self.targets = torch.as_tensor(
            (train.y - self.mean[train.output]) / self.std[train.output], dtype=torch.float32
        )
        self.weights = torch.as_tensor(output_weights(train.output), dtype=torch.float32)
        self.outputs = torch.as_tensor(train.output)
        self.steps_per_epoch = math.ceil(len(train) / settings.batch_size)
        total = settings.epochs * self.steps_per_epoch
        self.optimizer = make_adamw(
            self.model, lr=settings.lr, weight_decay=settings.weight_decay, fused=self.device.type == "cuda"
        )
        self.scheduler = warmup_decay_schedule(self.optimizer, total=total, warmup=int(settings.warmup_frac * total))
        self.key = self._state_key(start_from)
        self.state_path = None if state_dir is None else Path(state_dir) / STATE_FILE
        self.epoch = 0  # epochs finished
        self.history: list[dict[str, float]] = []
        self.best: dict[str, torch.Tensor] = {}
        self.best_epoch, self.best_score, self.stale, self.stopped_early = 0, math.inf, 0, False

    def _state_key(self, start_from: FinetunedRegressor | None) -> str:
        """What a saved state must have been trained on: checkpoint, settings, seed, both
        parts, the starting model and its standardisation, the anchor."""
        train, valid = self.train_part, self.valid_part
        return content_hash(
            "finetune-v3",
            self.files.weights_digest(),
            self.settings.model_dump(),
            self.seed,
            [train.smiles, train.y, train.output],
            [valid.smiles, valid.y, valid.output],
            None if start_from is None else [_weights_digest(start_from.model), self.mean, self.std],
            self.anchor,
        )

    # -- the saved state ------------------------------------------------------------------
    def resume(self) -> int:
        """Load the state saved for exactly these inputs (model, optimiser, schedule, torch's
        CPU and CUDA RNG, history, best epoch), if any; return the epochs it finished."""
        state = _load_state(self.state_path, self.key)
        if state is None:
            return 0
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        restore_torch_rng(state["rng"])
        self.history, self.best = state["history"], state["best"]
        self.best_epoch, self.best_score, self.stale = state["best_epoch"], state["best_score"], state["stale"]
        self.epoch, self.stopped_early = state["epoch"], state["stopped"]
        log.info("resuming finetuning after epoch %d from %s", self.epoch, self.state_path)
        return self.epoch

    def _save(self) -> None:
        if self.state_path is not None:
            _save_state(
                self.state_path,
                key=self.key,
                epoch=self.epoch,
                stopped=self.stopped_early,
                model=self.model.state_dict(),
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                rng=torch_rng_state(),
                history=self.history,
                best=self.best,
                best_epoch=self.best_epoch,
                best_score=self.best_score,
                stale=self.stale,
            )

    # -- the loop -------------------------------------------------------------------------
    def train(self, tracker: ScalarLogger, *, progress: bool = False) -> None:
        """Run (or resume) the remaining epochs until ``settings.epochs`` or early stopping."""
        from tqdm.auto import tqdm

        remaining = range(self.epoch, self.epoch if self.stopped_early else self.settings.epochs)
        bar = tqdm(remaining, desc="finetune", unit="epoch", disable=not show_progress(progress), leave=False)
        for epoch in bar:
            losses = self._train_epoch(epoch)
            score = self._end_epoch(losses)
            bar.set_postfix(valid_score=f"{score:.3f}")
            tracker.log_scalars(self.epoch, {f"finetune/{k}": v for k, v in self.history[-1].items() if k != "epoch"})
            self._save()
            if self.stopped_early:
                break

    def _train_epoch(self, epoch: int) -> torch.Tensor:
        """The epoch's losses (float32, on the CPU), after checking they are finite: the only
        wait for the device in an epoch."""
        self.model.train()
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.train_part))
        size = self.settings.batch_size
        losses = torch.stack([self.train_step(order[b * size : (b + 1) * size]) for b in range(self.steps_per_epoch)])
        return self._checked(losses.float().cpu(), epoch)

    def train_step(self, rows: np.ndarray) -> torch.Tensor:
        """One update on the training molecules ``rows``; returns the detached loss, left on
        the device (nothing here waits for it)."""
        ids, attention = pad_batch([self.train_ids[i] for i in rows], self.pad_id)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            pred = self.model(self._to_device(ids), self._to_device(attention))
        loss = masked_mse(
            pred.float(),
            self._to_device(self.outputs[rows]),
            self._to_device(self.targets[rows]),
            self._to_device(self.weights[rows]),
        )
        if self.anchors:
            pull = sum(
                torch.sum((p - self.anchors[n]) ** 2) for n, p in self.model.named_parameters() if n in self.anchors
            )
            loss = loss + self.anchor * pull
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if self.settings.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` on the training device: through pinned memory, without waiting, on CUDA."""
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def _checked(self, losses: torch.Tensor, epoch: int) -> torch.Tensor:
        """``losses``, or a :class:`TrainingError` naming the first non-finite step."""
        if torch.isfinite(losses).all():
            return losses
        first = int((~torch.isfinite(losses)).nonzero()[0])
        kept = (
            f"the state after epoch {epoch} is kept in {self.state_path}"
            if self.state_path is not None and self.state_path.is_file()
            else "no finished epoch was saved"
        )
        raise TrainingError(
            f"finetuning diverged: non-finite loss at step {epoch * self.steps_per_epoch + first + 1} "
            f"(epoch {epoch + 1}, batch {first + 1}); {kept}. Lower training.lr or check the labels."
        )

    def _end_epoch(self, losses: torch.Tensor) -> float:
        """Validate after an epoch: record its history entry, keep the best weights, count
        epochs without improvement; return the validation score."""
        raw = _predict_standardised(
            self.model, self.valid_ids, self.pad_id, self.device, self.bf16, 2 * self.settings.batch_size
        )
        score, rmse = _validation(raw, self.valid_part, self.mean, self.std)
        self.epoch += 1
        self.history.append(
            {
                "epoch": self.epoch,
                "train_loss": float(losses.mean()),
                **rmse,
                **({"valid_score": score} if self.n_outputs > 1 else {}),
                "lr": float(self.scheduler.get_last_lr()[0]),
            }
        )
        if score < self.best_score:
            self.best_score, self.best_epoch, self.stale = score, self.epoch, 0
            self.best = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        else:
            self.stale += 1
        self.stopped_early = self.settings.patience is not None and self.stale >= self.settings.patience
        return score

    def result(self) -> FinetunedRegressor:
        """The model with the best epoch's weights, in evaluation mode."""
        self.model.load_state_dict(self.best)
        self.model.eval()
        return FinetunedRegressor(
            self.model,
            self.files,
            self.tokenizer,
            self.mean,
            self.std,
            self.device,
            self.bf16,
            self.best_epoch,
            self.stopped_early,
            self.history,
        )


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


def _initial_model(
    files: TransformerFiles,
    settings: FinetuneSettings,
    seed: int,
    n_outputs: int,
    start_from: FinetunedRegressor | None,
) -> tuple[RegressionModel, PreTrainedTokenizerFast]:
    """The encoder of ``files`` with a new head initialised from ``seed`` (or
    ``start_from``'s weights), its bottom ``settings.freeze`` blocks frozen; and its tokenizer."""
    torch.manual_seed(seed)
    encoder, tokenizer = files.load()
    model = RegressionModel(encoder, pooling=settings.pooling, dropout=settings.dropout, n_outputs=n_outputs)
    if start_from is not None:
        model.load_state_dict({k: v.detach().cpu() for k, v in start_from.model.state_dict().items()})
    model.freeze(settings.freeze)
    return model, tokenizer


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
