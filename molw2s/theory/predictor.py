"""The predictors of W2S performance (theory.md section 4), computed in factored form.

With P_s = U_s D_s U_s^T and P_w = U_w D_w U_w^T:

    C = U_s^T U_w,   A = D_s (I - C (2 D_w - D_w^2) C^T) D_s
    M = sqrt(lambda_max(A)) = ||P_s (I - P_w)||_op,   M_F = trace(A) = ||P_s (I - P_w)||_F^2
    gap = P_s (I - P_w) y  (y centered on D_s),       PredGap_hat = ||gap||^2 / n_hat

No n_hat x n_hat matrix is formed. ``molw2s.theory.dense`` holds the naive reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import scipy.linalg
from pydantic import Field

from molw2s.config import StrictModel, build_model
from molw2s.errors import DataError
from molw2s.theory.principal import PrincipalOperator, Rule, principal_operator
from molw2s.w2s.features import Scale
from molw2s.w2s.validation import as_matrix, as_vector, same_rows


class PredictorConfig(StrictModel):
    """How k is chosen for P_w and P_s (theory.md section 3; ``auto`` resolves per
    representation to flat_tail or full_rank, docs/predictor.md)."""

    rule: Rule = "auto"
    tau: float = Field(0.9, gt=0, le=1)
    k_w: int | None = Field(None, ge=1)
    k_s: int | None = Field(None, ge=1)
    c: float = Field(3.0, gt=0)


@dataclass(frozen=True)
class PredictorResult:
    """M, M_F and (with labels) PredGap_hat, plus what produced them.

    ``gap`` holds the per-example entries of P_s (I - P_w) y on D_s (None without
    labels); it is left out of :meth:`to_dict`. ``rule`` is the configured rule,
    ``rule_w`` / ``rule_s`` the ones used for P_w / P_s (``auto`` resolved).
    """

    M: float
    M_F: float
    predgap_hat: float | None
    k_w: int
    k_s: int
    gamma_w: float
    gamma_s: float
    rank_w: int
    rank_s: int
    beta_w: float
    beta_s: float
    rule: Rule
    rule_w: Rule
    rule_s: Rule
    tau: float
    c: float
    scale: Scale
    n_hat: int
    gap: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Every scalar field by name (JSON-ready)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "gap"}


def gap_matrix(op_w: PrincipalOperator, op_s: PrincipalOperator) -> np.ndarray:
    """A = D_s (I - C (2 D_w - D_w^2) C^T) D_s (k_s x k_s, PSD), C = U_s^T U_w."""
    C = op_s.U.T @ op_w.U
    dw, ds = op_w.weights, op_s.weights
    inner = np.eye(op_s.k) - (C * (2.0 * dw - dw**2)) @ C.T
    A = ds[:, None] * inner * ds[None, :]
    sym: np.ndarray = (A + A.T) / 2.0
    return sym


def operator_norms(op_w: PrincipalOperator, op_s: PrincipalOperator) -> tuple[float, float]:
    """(M, M_F): ||P_s (I - P_w)||_op and ||P_s (I - P_w)||_F^2."""
    _same_points(op_w, op_s)
    if op_s.k == 0:
        return 0.0, 0.0
    A = gap_matrix(op_w, op_s)
    top = float(scipy.linalg.eigvalsh(A, subset_by_index=[op_s.k - 1, op_s.k - 1])[0])
    return float(np.sqrt(max(top, 0.0))), float(max(np.trace(A), 0.0))


def gap_vector(op_w: PrincipalOperator, op_s: PrincipalOperator, y: np.ndarray) -> np.ndarray:
    """Per-example P_s (I - P_w) y on D_s, with ``y`` centered by its mean first."""
    _same_points(op_w, op_s)
    yc = np.asarray(y, dtype=np.float64) - np.mean(y)
    return op_s.apply(yc - op_w.apply(yc))


def predict_w2s(
    H_w: np.ndarray,
    H_s: np.ndarray,
    *,
    beta_w: float,
    beta_s: float,
    y: np.ndarray | None = None,
    rule: Rule = "auto",
    tau: float = 0.9,
    k_w: int | None = None,
    k_s: int | None = None,
    c: float = 3.0,
    scale: Scale = "none",
    factor_w: float | None = None,
    factor_s: float | None = None,
) -> PredictorResult:
    """M, M_F and (with gold labels ``y`` on D_s) PredGap_hat from the weak and strong
    representations of the same n_hat points of D_s.

    ``beta_w`` / ``beta_s`` are the ridge coefficients of the weak and strong heads and
    ``scale`` their feature scaling; ``factor_w`` / ``factor_s`` pin the trace-scaling
    factors to the ones the heads used (default: computed on these points).
    """
    H_w = as_matrix(H_w, "weak representation", min_rows=2)
    H_s = as_matrix(H_s, "strong representation", min_rows=2)
    n_hat = same_rows(weak_representation=H_w, strong_representation=H_s)
    if y is not None:
        y = as_vector(y, "labels", n_rows=n_hat)
    settings = {"rule": rule, "tau": tau, "k_w": k_w, "k_s": k_s, "c": c}
    config = build_model(PredictorConfig, settings, source="predict_w2s")
    op_w = principal_operator(
        H_w, beta_w, k=k_w, factor=factor_w, rule=config.rule, tau=config.tau, c=config.c, scale=scale
    )
    op_s = principal_operator(
        H_s, beta_s, k=k_s, factor=factor_s, rule=config.rule, tau=config.tau, c=config.c, scale=scale
    )
    return predict_from_operators(op_w, op_s, y, config=config, scale=scale)


def predict_from_operators(
    op_w: PrincipalOperator,
    op_s: PrincipalOperator,
    y: np.ndarray | None = None,
    *,
    config: PredictorConfig | None = None,
    scale: Scale | None = None,
) -> PredictorResult:
    """The predictor from two ready operators on the same D_s (e.g. a strong operator
    shared by many weak models). ``config`` and ``scale`` are recorded in the result
    (defaults: ``PredictorConfig(rule=op_s.rule)`` and the operators' own scaling)."""
    config = config or PredictorConfig(rule=op_s.rule)
    M, M_F = operator_norms(op_w, op_s)
    gap = None if y is None else gap_vector(op_w, op_s, y)
    return PredictorResult(
        M=M,
        M_F=M_F,
        predgap_hat=None if gap is None else float(gap @ gap) / op_s.n,
        k_w=op_w.k,
        k_s=op_s.k,
        gamma_w=op_w.gamma,
        gamma_s=op_s.gamma,
        rank_w=op_w.rank,
        rank_s=op_s.rank,
        beta_w=op_w.beta,
        beta_s=op_s.beta,
        rule=config.rule,
        rule_w=op_w.rule,
        rule_s=op_s.rule,
        tau=config.tau,
        c=config.c,
        scale=op_s.scale if scale is None else scale,
        n_hat=op_s.n,
        gap=gap,
    )


def _same_points(op_w: PrincipalOperator, op_s: PrincipalOperator) -> None:
    if op_w.n != op_s.n:
        raise DataError(f"P_w is on {op_w.n} points but P_s on {op_s.n}; both must be on the same D_s")
