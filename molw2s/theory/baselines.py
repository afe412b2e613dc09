"""Baselines to compare the predictor with (theory.md section 4).

Misfit and Err_w come out of the W2S protocol (``molw2s.w2s.protocol.W2SResult``);
this module adds the representation-similarity baseline, linear CKA.
"""

from __future__ import annotations

import numpy as np

from molw2s.w2s.validation import as_matrix, same_rows


def linear_cka(H_w: np.ndarray, H_s: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) between two representations of the same points:
    ||X^T Y||_F^2 / (||X^T X||_F ||Y^T Y||_F) with column-centered X, Y.

    Uses the feature-space or the n x n Gram form, whichever costs fewer flops. In [0, 1]; invariant to
    orthogonal transforms and isotropic scaling. A representation that is constant on
    these points shares no variance with anything: its CKA is defined as 0.
    """
    X = as_matrix(H_w, "weak representation", min_rows=2)
    Y = as_matrix(H_s, "strong representation", min_rows=2)
    n = same_rows(weak_representation=X, strong_representation=Y)
    X, Y = X - X.mean(axis=0), Y - Y.mean(axis=0)
    dx, dy = X.shape[1], Y.shape[1]
    if n * (dx + dy) <= dx * dx + dy * dy + dx * dy:
        Kx, Ky = X @ X.T, Y @ Y.T
        cross, norm_x, norm_y = float(np.sum(Kx * Ky)), np.linalg.norm(Kx), np.linalg.norm(Ky)
    else:
        cross = float(np.linalg.norm(X.T @ Y) ** 2)
        norm_x, norm_y = np.linalg.norm(X.T @ X), np.linalg.norm(Y.T @ Y)
    if norm_x == 0.0 or norm_y == 0.0:
        return 0.0
    return cross / float(norm_x * norm_y)
