"""Validation metrics of pretraining (pure numpy): masked-token accuracy, R^2, baselines."""

from __future__ import annotations

import numpy as np


def pooled_r2(pred: np.ndarray, target: np.ndarray) -> float:
    """Variance-weighted R^2 over columns: 1 - sum(SSE) / sum(SST).

    Equal to scikit-learn's ``r2_score(..., multioutput="variance_weighted")``. A plain
    mean of per-column R^2 is useless on held-out descriptors: a column nearly constant
    in the held-out set has SST ~ 0 and an R^2 of -1e5.
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"pred and target must be equal-shape 2-d arrays, got {pred.shape} and {target.shape}")
    sst = ((target - target.mean(axis=0)) ** 2).sum()
    if sst == 0:
        return float("nan")
    return float(1.0 - ((target - pred) ** 2).sum() / sst)


def unigram_baseline(train_counts: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and cross-entropy of predicting masked tokens from training frequencies alone.

    ``train_counts[t]``: occurrences of token id t in the training corpus (special tokens
    zero); ``labels``: the true ids at the held-out masked positions. The baseline always
    predicts the most frequent token; its loss uses add-one smoothed frequencies.
    """
    counts = np.asarray(train_counts, dtype=np.float64)
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("no masked positions to evaluate")
    probs = (counts + 1.0) / (counts + 1.0).sum()
    return {
        "accuracy": float(np.mean(labels == int(np.argmax(counts)))),
        "loss": float(-np.mean(np.log(probs[labels]))),
    }
