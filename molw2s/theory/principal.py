"""Principal kernels and the projection operator P (theory.md section 3).

For a representation H on D_s (n_hat x d), centered by its column means and scaled as
the heads scale it, with sample-covariance eigenvalues lambda_j = s_j^2 / n_hat and
left singular vectors U:

    k      from a label-free rule (auto, flat_tail, tau, fixed or full_rank)
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

Rule = Literal["auto", "flat_tail", "tau", "fixed", "full_rank"]
RULES: tuple[str, ...] = get_args(Rule)
#: ``auto`` takes flat_tail only where the tail ridge gamma is at least this fraction of beta:
#: below it the tail changes P by about c * this fraction, so the exact smoother is taken
MIN_GAMMA_FRACTION = 0.01


@dataclass(frozen=True)
class TailCheck:
    """Whether the spectrum beyond ``k`` is the theory's tail (theory.md section 3): a
    high-dimensional, flat bulk that acts on the n_hat points as the extra ridge gamma.

    On the n_hat points the tail's kernel K_tail = H_tail H_tail^T / n_hat has the tail
    eigenvalues lambda_{k+1..r} (zero in its other directions) and mean eigenvalue gamma;
    it is close to gamma * I only when lambda_{k+1} is a small multiple of gamma, i.e.
    when the sample effective rank sum_{j>k} lambda_j / lambda_{k+1} = n_hat / spread is a
    sizeable fraction of n_hat (Bartlett et al. 2020's condition r_k >= n / c, read on the
    sample). ``effective_dim`` is the participation ratio (sum lambda)^2 / sum lambda^2 of
    the tail (at least n_hat / spread).
    """

    k: int
    n_hat: int
    beta: float
    c: float
    gamma: float  # sum_{j>k} lambda_j / n_hat
    spread: float  # lambda_{k+1} / gamma (inf without a tail)
    effective_dim: float  # (sum_{j>k} lambda_j)^2 / sum_{j>k} lambda_j^2 (0 without a tail)

    @property
    def flat(self) -> bool:
        """lambda_{k+1} <= c * gamma: flat_tail's test with the tail's mean taken over all n_hat
        directions of the sample, not only over the r - k the representation has."""
        return self.spread <= self.c

    @property
    def high_dimensional(self) -> bool:
        """The tail spans more directions (participation ratio) than the principal part."""
        return self.effective_dim >= max(self.k, 1)

    @property
    def ridge_like(self) -> bool:
        """gamma is not negligible against beta (at least :data:`MIN_GAMMA_FRACTION` of it)."""
        return self.gamma > 0 and self.gamma >= MIN_GAMMA_FRACTION * self.beta

    @property
    def has_tail(self) -> bool:
        """All three: the spiked regime of the theory applies at this k."""
        return self.flat and self.high_dimensional and self.ridge_like


def tail_diagnostics(eigenvalues: np.ndarray, n_hat: int, k: int, beta: float, *, c: float = 3.0) -> TailCheck:
    """The :class:`TailCheck` of the sample-covariance ``eigenvalues`` (descending) of a
    representation on ``n_hat`` points, cut at principal dimension ``k`` for a head with
    ridge ``beta``."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    tail = lam[k:]
    total = float(tail.sum())
    gamma = total / n_hat
    top = float(tail[0]) if tail.size else 0.0
    return TailCheck(
        k=int(k),
        n_hat=int(n_hat),
        beta=float(beta),
        c=float(c),
        gamma=gamma,
        spread=top / gamma if gamma > 0 else float("inf"),
        effective_dim=total**2 / float(tail @ tail) if total > 0 else 0.0,
    )


def resolve_rule(eigenvalues: np.ndarray, rule: Rule, *, n_hat: int, beta: float, c: float = 3.0) -> Rule:
    """The rule used on this spectrum: for ``auto``, ``flat_tail`` where
    :func:`tail_diagnostics` finds the theory's tail at flat_tail's k, else ``full_rank``;
    any other rule is itself. ``eigenvalues``: the positive ones, lambda_1..lambda_r."""
    if rule != "auto":
        return rule
    k = choose_k(eigenvalues, "flat_tail", c=c)
    return "flat_tail" if tail_diagnostics(eigenvalues, n_hat, k, beta, c=c).has_tail else "full_rank"


@dataclass(frozen=True)
class PrincipalOperator:
    """P = U diag(weights) U^T on the n_hat points it was computed on.

    ``eigenvalues`` are all sample-covariance eigenvalues lambda_1 >= ... (length
    min(n_hat, d), the ones below the numerical rank set to 0); ``rank`` is the numerical
    rank r; ``k`` the principal dimension (0 only for a constant representation, then
    P = 0); ``gamma`` the tail ridge; ``beta`` the head's ridge coefficient; ``scale``
    the feature scaling applied before the SVD; ``rule`` the rule used (never ``auto``,
    which resolves per representation).
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
    eigenvalues: np.ndarray,
    rule: Rule = "flat_tail",
    *,
    tau: float = 0.9,
    k: int | None = None,
    c: float = 3.0,
    n_hat: int | None = None,
    beta: float | None = None,
) -> int:
    """The principal dimension from the positive eigenvalues lambda_1 >= ... >= lambda_r.

    - ``flat_tail``: the smallest k >= 1 with lambda_{k+1} <= c * mean(lambda_{k+1..r});
      k = r when r = 1 or no k < r qualifies (possible only for c < 1).
    - ``tau``: the smallest k with sum_{j<=k} lambda_j >= tau * sum_j lambda_j.
    - ``fixed``: ``k``, which must satisfy 1 <= k <= r.
    - ``full_rank``: r (gamma = 0: P is the full ridge smoother of the representation).
    - ``auto``: flat_tail's k or r, as :func:`resolve_rule` decides (needs ``n_hat`` and ``beta``).
    r = 0 (a constant representation) gives k = 0 for every rule but fixed.
    """
    check_rule(rule, tau, c)
    lam = np.asarray(eigenvalues, dtype=np.float64)
    r = lam.size
    if rule == "auto":
        if n_hat is None or beta is None:
            raise ConfigError("rule 'auto' needs n_hat and beta (it checks the tail against the ridge)")
        rule = resolve_rule(lam, rule, n_hat=n_hat, beta=beta, c=c)
    if rule == "fixed":
        if k is None:
            raise ConfigError("rule 'fixed' needs k (k_w / k_s)")
        if not 1 <= k <= r:
            raise ConfigError(
                f"fixed k={k} is impossible: the representation has numerical rank {r} on these points "
                f"(at most n_hat - 1 after centering, and at most d); choose 1 <= k <= {r}"
            )
        return int(k)
    if r == 0 or rule == "full_rank":
        return r
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
    rule: Rule = "auto",
    tau: float = 0.9,
    k: int | None = None,
    c: float = 3.0,
    scale: Scale = "none",
    factor: float | None = None,
) -> PrincipalOperator:
    """P for representation ``H`` (n_hat x d) and the head's ridge coefficient ``beta``;
    the operator's ``rule`` is the one used (``auto`` resolved to flat_tail or full_rank).

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
    used = resolve_rule(lam[:rank], rule, n_hat=n, beta=beta, c=c)
    k_used = choose_k(lam[:rank], used, tau=tau, k=k, c=c)
    U = left_singular_vectors(Z, lam, vecs, k_used)
    gamma = max(total - float(lam[:k_used].sum()), 0.0) / n
    weights = lam[:k_used] / (lam[:k_used] + beta + gamma)
    return PrincipalOperator(
        U=U, weights=weights, k=k_used, gamma=gamma, beta=beta, eigenvalues=lam, rank=rank, rule=used, scale=scale
    )
