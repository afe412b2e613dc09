"""Naive dense reference of the predictor: n_hat x n_hat matrices, O(n_hat^3).

For tests and benchmarks only. It follows the kernel form of theory.md section 3
(P = K_P (K_P + (beta + gamma) I)^{-1}, K_P = H_k H_k^T / n_hat, with H_k from a full SVD)
and forms P_s (I - P_w) explicitly, so it shares no algebra with the factored path.
"""

from __future__ import annotations

import numpy as np


def dense_operator(H: np.ndarray, beta: float, k: int) -> np.ndarray:
    """P (n_hat x n_hat) for representation ``H`` with principal dimension ``k``."""
    H = np.asarray(H, dtype=np.float64)
    n = H.shape[0]
    Hc = H - H.mean(axis=0)
    U, s, _ = np.linalg.svd(Hc, full_matrices=False)
    H_k = U[:, :k] * s[:k]
    K_P = H_k @ H_k.T / n
    gamma = (np.sum(Hc**2) / n - np.sum(s[:k] ** 2) / n) / n
    P: np.ndarray = K_P @ np.linalg.inv(K_P + (beta + gamma) * np.eye(n))
    return P


def dense_predictor(
    H_w: np.ndarray, H_s: np.ndarray, *, beta_w: float, beta_s: float, k_w: int, k_s: int, y: np.ndarray | None = None
) -> tuple[float, float, float | None]:
    """(M, M_F, PredGap_hat) from the explicit matrix B = P_s (I - P_w)."""
    n = H_w.shape[0]
    B = dense_operator(H_s, beta_s, k_s) @ (np.eye(n) - dense_operator(H_w, beta_w, k_w))
    predgap = None
    if y is not None:
        yc = np.asarray(y, dtype=np.float64) - np.mean(y)
        predgap = float(np.sum((B @ yc) ** 2)) / n
    return float(np.linalg.norm(B, 2)), float(np.linalg.norm(B, "fro") ** 2), predgap
