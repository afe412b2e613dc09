"""Principal kernels and the projection operator P (theory.md section 3).

For a representation H on D_s (n_hat x d), centered by its column means and scaled as
the heads scale it, with sample-covariance eigenvalues lambda_j = s_j^2 / n_hat and
left singular vectors U:

    k      from a label-free rule (flat_tail, tau or fixed)
    gamma  = (sum_{j>k} lambda_j) / n_hat            the non-principal part as extra ridge
    P      = U_k diag(lambda_j / (lambda_j + beta + gamma)) U_k^T

P is kept factored (U_k and the weights); it is never formed as an n_hat x n_hat matrix.
The spectrum comes from the Gram matrix of the smaller side (d x d or n_hat x n_hat), so
the cost is O(n_hat * d * min(n_hat, d)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import scipy.linalg

from molw2s.errors import ConfigError, DataError
from molw2s.w2s.features import Scale, fit_scaling
from molw2s.w2s.validation import as_matrix, check_beta

Rule = Literal["flat_tail", "tau", "fixed"]
RULES: tuple[str, ...] = get_args(Rule)


@dataclass(frozen=True)
class PrincipalOperator:
    """P = U diag(weights) U^T on the n_hat points it was computed on.

    ``eigenvalues`` are all sample-covariance eigenvalues lambda_1 >= ... (length
    min(n_hat, d), the ones below the numerical rank set to 0); ``rank`` is the numerical
    rank r; ``k`` the principal dimension (0 only for a constant representation, then
    P = 0); ``gamma`` the tail ridge; ``beta`` the head's ridge coefficient; ``scale``
    the feature scaling applied before the SVD.
    """

    U: np.ndarray
    weights: np.ndarray
    k: int
    gamma: float
    beta: float
    eigenvalues: np.ndarray
    rank: int
    rule: Rule
    scale: Scale = "none"

    @property
    def n(self) -> int:
        """The number of points (n_hat)."""
        return int(self.U.shape[0])

    def apply(self, v: np.ndarray) -> np.ndarray:
        """P @ v for a vector or a matrix of columns, in O(n_hat * k) per column."""
        cols = np.asarray(v, dtype=np.float64).reshape(self.n, -1)
        out: np.ndarray = (self.U @ (self.weights[:, None] * (self.U.T @ cols))).reshape(np.shape(v))
        return out

    def dense(self) -> np.ndarray:
        """P as an n_hat x n_hat matrix (for tests and small problems only)."""
        P: np.ndarray = (self.U * self.weights) @ self.U.T
        return P


def check_rule(rule: str, tau: float, c: float) -> Rule:
    """Validate the k-rule settings; a ConfigError naming the bad one."""
    if rule not in RULES:
        raise ConfigError(f"rule must be one of {', '.join(RULES)}; got {rule!r}")
    if not (0.0 < tau <= 1.0):
        raise ConfigError(f"tau must lie in (0, 1], got {tau!r}")
    if not (np.isfinite(c) and c > 0):
        raise ConfigError(f"c (the flat_tail factor) must be finite and > 0, got {c!r}")
    return rule  # type: ignore[return-value]


def choose_k(
    eigenvalues: np.ndarray, rule: Rule = "flat_tail", *, tau: float = 0.9, k: int | None = None, c: float = 3.0
) -> int:
    """The principal dimension from the positive eigenvalues lambda_1 >= ... >= lambda_r.

    - ``flat_tail``: the smallest k >= 1 with lambda_{k+1} <= c * mean(lambda_{k+1..r});
      k = r when r = 1 or no k < r qualifies (possible only for c < 1).
    - ``tau``: the smallest k with sum_{j<=k} lambda_j >= tau * sum_j lambda_j.
    - ``fixed``: ``k``, which must satisfy 1 <= k <= r.
    r = 0 (a constant representation) gives k = 0 for flat_tail and tau.
    """
    check_rule(rule, tau, c)
    lam = np.asarray(eigenvalues, dtype=np.float64)
    r = lam.size
    if rule == "fixed":
        if k is None:
            raise ConfigError("rule 'fixed' needs k (k_w / k_s)")
        if not 1 <= k <= r:
            raise ConfigError(
                f"fixed k={k} is impossible: the representation has numerical rank {r} on these points "
                f"(at most n_hat - 1 after centering, and at most d); choose 1 <= k <= {r}"
            )
        return int(k)
    if r == 0:
        return 0
    if rule == "tau":
        fraction = np.cumsum(lam) / lam.sum()
        return int(min(np.searchsorted(fraction, tau * (1 - 1e-12)) + 1, r))
    tail_mean = np.cumsum(lam[::-1])[::-1] / np.arange(r, 0, -1)  # mean(lambda_{j..r}), 0-based j
    flat = np.nonzero(lam[1:] <= c * tail_mean[1:])[0]
    return int(flat[0] + 1) if flat.size else r


def covariance_spectrum(Hc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample-covariance eigenvalues lambda (descending, all min(n, d) of them, rounding
    negatives clipped to 0) of the centered matrix ``Hc``, and the eigenvectors of the
    smaller Gram matrix (right singular vectors V if d <= n, else left ones U)."""
    n, d = Hc.shape
    evals, vecs = scipy.linalg.eigh(Hc.T @ Hc if d <= n else Hc @ Hc.T)
    return np.clip(evals[::-1], 0.0, None) / n, vecs[:, ::-1]


def left_singular_vectors(Hc: np.ndarray, eigenvalues: np.ndarray, vecs: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` left singular vectors of ``Hc`` (n x k) from :func:`covariance_spectrum`."""
    n, d = Hc.shape
    if d > n:
        return np.ascontiguousarray(vecs[:, :k])
    U: np.ndarray = (Hc @ vecs[:, :k]) / np.sqrt(n * eigenvalues[:k])
    return U


def numerical_rank(eigenvalues: np.ndarray, shape: tuple[int, int]) -> int:
    """Eigenvalues above lambda_1 * max(n, d) * eps count (a Gram spectrum cannot resolve less)."""
    if eigenvalues.size == 0 or eigenvalues[0] <= 0:
        return 0
    tol = eigenvalues[0] * max(shape) * np.finfo(np.float64).eps
    return int(np.count_nonzero(eigenvalues > tol))


def principal_operator(
    H: np.ndarray,
    beta: float,
    *,
    rule: Rule = "flat_tail",
    tau: float = 0.9,
    k: int | None = None,
    c: float = 3.0,
    scale: Scale = "none",
    factor: float | None = None,
) -> PrincipalOperator:
    """P for representation ``H`` (n_hat x d) and the head's ridge coefficient ``beta``.

    ``H`` is centered by its own column means and scaled as the heads scale it
    (:func:`molw2s.w2s.features.fit_scaling`; ``factor`` pins the trace factor to the one
    a head computed on its own training set).
    """
    H = as_matrix(H, "representation", min_rows=2)
    beta = check_beta(beta, allow_zero=True)
    check_rule(rule, tau, c)
    n = H.shape[0]
    if rule == "fixed" and k is not None and k > min(n - 1, H.shape[1]):
        raise DataError(
            f"fixed k={k} needs n_hat > k and d >= k, "
            f"but the representation has n_hat={n} rows and d={H.shape[1]} features"
        )
    Z = fit_scaling(H, scale, factor=factor).transform(H)
    lam, vecs = covariance_spectrum(Z)
    total = float(lam.sum())  # trace of the sample covariance
    rank = numerical_rank(lam, H.shape)
    lam[rank:] = 0.0
    k_used = choose_k(lam[:rank], rule, tau=tau, k=k, c=c)
    U = left_singular_vectors(Z, lam, vecs, k_used)
    gamma = max(total - float(lam[:k_used].sum()), 0.0) / n
    weights = lam[:k_used] / (lam[:k_used] + beta + gamma)
    return PrincipalOperator(
        U=U, weights=weights, k=k_used, gamma=gamma, beta=beta, eigenvalues=lam, rank=rank, rule=rule, scale=scale
    )
