"""Held-out evaluation of a pretrained member: masked-token accuracy, MLM loss, PhysChem R^2."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from molw2s.encoders.model import MolBertForPretraining
from molw2s.encoders.padding import pad_batch
from molw2s.encoders.tokenizer import IGNORE_INDEX
from molw2s.pretraining.corpus import PretrainingData
from molw2s.pretraining.metrics import pooled_r2, unigram_baseline


@torch.no_grad()
def evaluate(
    model: MolBertForPretraining,
    data: PretrainingData,
    *,
    batch_size: int = 128,
    autocast: contextlib.AbstractContextManager[object] | None = None,
) -> dict[str, float]:
    """Metrics on the held-out split with its fixed masks (the same for every member)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # type: ignore[no-untyped-call]
    order = np.argsort(data.val.lengths, kind="stable")
    pad = data.tokenizer.pad_token_id
    n_correct, n_masked, loss_sum = 0, 0, 0.0
    preds, targets = [], []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        ids, attention = pad_batch([data.val_masked_ids[i] for i in rows], pad)
        labels, _ = pad_batch([data.val_labels[i] for i in rows], IGNORE_INDEX)
        with autocast or contextlib.nullcontext():
            out = model(ids.to(device), attention.to(device), labels=labels.to(device))
        n_correct += int(out.n_correct)
        n_masked += out.n_masked
        loss_sum += float(out.mlm_loss) * out.n_masked
        if out.physchem_pred is not None:
            assert data.val.physchem is not None  # the model has a PhysChem head only when the corpus has targets
            preds.append(out.physchem_pred.float().cpu().numpy())
            targets.append(data.val.physchem[rows])
    model.train(was_training)
    metrics = {
        "mlm_accuracy": n_correct / max(n_masked, 1),
        "mlm_loss": loss_sum / max(n_masked, 1),
        "n_masked": n_masked,
    }
    if preds:
        metrics["physchem_r2"] = pooled_r2(np.concatenate(preds), np.concatenate(targets))
    return metrics


def baseline_metrics(data: PretrainingData) -> dict[str, float]:
    """The unigram baseline on the same held-out masked positions."""
    labels = np.concatenate([np.asarray(seq) for seq in data.val_labels])
    base = unigram_baseline(data.token_counts, labels[labels != IGNORE_INDEX])
    return {"mlm_accuracy": base["accuracy"], "mlm_loss": base["loss"]}
