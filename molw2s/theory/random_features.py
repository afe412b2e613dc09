"""Random-feature weak-to-strong simulator (theory.md section 7; Medvedev et al., ICML 2025).

Inputs x ~ Unif(S^{d-1}); a width-M model is f(x) = phi(x)^T a with

    phi(x) = sqrt(d / M) * relu(U x),   rows u_j of U drawn from Unif(S^{d-1}),

so that phi(x) . phi(x') tends to the arc-cosine kernel kappa(x . x') as M grows and the
gradient-flow time t means the same thing at every width. The target is linear,
f*(x) = <beta, x> with ||beta|| = 1 (so E f*^2 = 1/d).

All population expectations are **exact** (no Monte-Carlo error): for unit u, v and
x ~ Unif(S^{d-1}), x = g / ||g|| with g ~ N(0, I_d) and ||g|| independent of x, so

    E_x relu(u.x) relu(v.x) = kappa(u.v) / d,  kappa(r) = (sqrt(1 - r^2) + (pi - arccos r) r) / (2 pi)
    E_x relu(u.x) (beta.x)  = (u.beta) / (2 d)

(Cho & Saul's degree-1 arc-cosine kernel, divided by E||g||^2 = d). Monte-Carlo samples
are used only to cross-check these numbers and to build the sample matrices that the
predictor M of theory.md section 4 needs.

Teacher: least squares of f* on its M_TE features over the population (a ridge of
``teacher_ridge``, default 1e-10 against trace(Sigma) = 1/2, only for numerical stability).
Student: M_ST features, population loss L(a) = E(phi^T a - f_TE)^2, gradient flow
da/dt = -grad L = -2 (Sigma a - b) from a(0) = 0, whose closed form in the eigenbasis
Sigma = V diag(mu) V^T is a(t) = V diag((1 - exp(-2 t mu)) / mu) V^T b.

The module is split in three layers: pure math (features, moments, fits, gradient flow),
one repeat of the experiment (:func:`simulate_repeat`, no I/O), and the summary across
repeats (:func:`molw2s.analysis.random_features.summarize`). The CLI (``molw2s simulate random-features``) writes files.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypedDict

import numpy as np
import scipy.linalg
from pydantic import Field, ValidationInfo, field_validator, model_validator

from molw2s.config import StrictModel
from molw2s.theory.predictor import PredictorConfig, predict_from_operators
from molw2s.theory.principal import PrincipalOperator, principal_operator

log = logging.getLogger(__name__)

#: rows of U @ U2^T formed at a time when building a Gram matrix (bounds the temporaries)
_GRAM_BLOCK = 2048
#: sample rows featurised at a time in Monte-Carlo estimates
_SAMPLE_BLOCK = 2048


class _TeacherRow(TypedDict):
    """One teacher's results inside :func:`simulate_repeat`."""

    teacher_loss: float
    curve: np.ndarray
    report: np.ndarray
    best_time: float
    best_weights: np.ndarray


# --------------------------------------------------------------------------- features


def sample_sphere(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points drawn uniformly from the unit sphere S^{d-1}, shape (n, d)."""
    if d < 2:
        raise ValueError(f"the sphere S^(d-1) needs d >= 2, got d={d}")
    g = rng.standard_normal((n, d))
    points: np.ndarray = g / np.linalg.norm(g, axis=1, keepdims=True)
    return points


def relu_features(X: np.ndarray, U: np.ndarray) -> np.ndarray:
    """phi(X) = sqrt(d / M) relu(X U^T), shape (n, M), for inputs X (n, d) and weights U (M, d)."""
    M, d = U.shape
    phi: np.ndarray = np.sqrt(d / M) * np.maximum(X @ U.T, 0.0)
    return phi


def arccos_kernel(r: np.ndarray) -> np.ndarray:
    """kappa(r) = E relu(z) relu(z') for standard normals with correlation r; kappa(1) = 1/2."""
    r = np.clip(r, -1.0, 1.0)
    kappa: np.ndarray = (np.sqrt(1.0 - r * r) + (np.pi - np.arccos(r)) * r) / (2.0 * np.pi)
    return kappa


def feature_gram(U1: np.ndarray, U2: np.ndarray) -> np.ndarray:
    """Exact population moment E_x phi_1(x) phi_2(x)^T = kappa(U1 U2^T) / sqrt(M1 M2).

    Rows of ``U1`` and ``U2`` must be unit vectors. Built in row blocks to bound memory.
    """
    _check_unit_rows(U1, "U1")
    _check_unit_rows(U2, "U2")
    out = np.empty((U1.shape[0], U2.shape[0]))
    scale = 1.0 / np.sqrt(U1.shape[0] * U2.shape[0])
    for start in range(0, U1.shape[0], _GRAM_BLOCK):
        block = slice(start, start + _GRAM_BLOCK)
        out[block] = arccos_kernel(U1[block] @ U2.T) * scale
    return out


def target_moment(U: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Exact E_x phi(x) f*(x) for the linear target f*(x) = <beta, x> (||beta|| = 1)."""
    _check_unit_rows(U, "U")
    M, d = U.shape
    moment: np.ndarray = (U @ beta) / (2.0 * np.sqrt(d * M))
    return moment


def _check_unit_rows(U: np.ndarray, name: str) -> None:
    if U.ndim != 2 or not np.allclose(np.linalg.norm(U, axis=1), 1.0, atol=1e-8):
        raise ValueError(f"{name} must be a 2-d array of unit-norm rows (points on the sphere)")


# ------------------------------------------------------------------ fits and losses


def least_squares(gram: np.ndarray, moment: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    """Minimiser of E(phi^T a - y)^2 + ridge ||a||^2 from the moments E phi phi^T and E phi y."""
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    mu, V = np.linalg.eigh(gram)
    inv = np.zeros_like(mu)
    keep = mu + ridge > np.finfo(float).eps * max(mu.max(), 0.0) * len(mu)
    inv[keep] = 1.0 / (mu[keep] + ridge)
    a: np.ndarray = V @ (inv * (V.T @ moment))
    return a


def quadratic_loss(a: np.ndarray, gram: np.ndarray, moment: np.ndarray, target_sq: float) -> float:
    """E(phi^T a - y)^2 = a^T (E phi phi^T) a - 2 a^T (E phi y) + E y^2."""
    return float(a @ gram @ a - 2.0 * a @ moment + target_sq)


def gram_eigenbasis(gram: np.ndarray, *, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending, round-off negatives set to 0) and eigenvectors of a PSD Gram.

    ``overwrite=True`` lets LAPACK destroy ``gram`` instead of copying it (saves M^2 floats).
    """
    mu, V = scipy.linalg.eigh(gram, overwrite_a=overwrite, check_finite=False, driver="evd")
    return np.maximum(mu, 0.0), V


def flow_filter(mu: np.ndarray, times: np.ndarray) -> np.ndarray:
    """g_t(mu) = (1 - exp(-2 t mu)) / mu (limit 2 t at mu = 0), shape (len(times), len(mu))."""
    times = np.asarray(times, dtype=float)
    if np.any(times < 0):
        raise ValueError(f"gradient-flow times must be >= 0, got {times[times < 0].tolist()}")
    tm = np.multiply.outer(times, mu)
    safe = np.where(mu > 0, mu, 1.0)
    return np.where(mu > 0, -np.expm1(-2.0 * tm) / safe, 2.0 * times[:, None])


def gradient_flow_weights(mu: np.ndarray, V: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """a(t) = V diag(g_t(mu)) V^T b: gradient flow on E(phi^T a - y)^2 from a(0) = 0 (b = E phi y)."""
    a: np.ndarray = V @ (flow_filter(mu, np.array([t]))[0] * (V.T @ b))
    return a


def flow_losses(
    mu: np.ndarray, V: np.ndarray, b: np.ndarray, c: np.ndarray, r_sq: float, times: np.ndarray
) -> np.ndarray:
    """E(f_t - r)^2 along the gradient flow trained on y (b = E phi y), against a function r.

    ``c`` = E phi r and ``r_sq`` = E r^2. With r = y this is the training loss; with r = f*
    the population error. Computed in the eigenbasis for all ``times`` at once.
    """
    G = flow_filter(mu, times)
    bt, ct = V.T @ b, V.T @ c
    losses: np.ndarray = (G * G) @ (mu * bt * bt) - 2.0 * G @ (bt * ct) + r_sq
    return losses


# ----------------------------------------------------------------------- config


class TimeGrid(StrictModel):
    """Log-spaced gradient-flow times over which the best stopping time is searched."""

    start: float = Field(1.0, gt=0)
    stop: float = Field(1e6, gt=0)
    points: int = Field(61, ge=2)

    @model_validator(mode="after")
    def _ordered(self) -> TimeGrid:
        if self.stop <= self.start:
            raise ValueError(f"time_grid.stop ({self.stop}) must exceed time_grid.start ({self.start})")
        return self

    def values(self) -> np.ndarray:
        """The grid as an array."""
        return np.geomspace(self.start, self.stop, self.points)


class RandomFeaturesConfig(StrictModel):
    """Settings of ``molw2s simulate random-features`` (defaults: the reduced CPU setting)."""

    d: int = 32
    m_student: int = Field(4096, ge=1)
    m_teachers: list[int] = Field(default_factory=lambda: [16, 32, 64, 128, 256])
    repeats: int = Field(3, ge=1)
    seed: int = Field(0, ge=0)
    teacher_ridge: float = Field(1e-10, ge=0)
    time_grid: TimeGrid = Field(default_factory=TimeGrid)
    report_times: list[float] = Field(default_factory=lambda: [100.0, 300.0, 1000.0, 3000.0])
    mc_check_samples: int = Field(20000, ge=100)
    predictor_samples: int = Field(2000, ge=2)
    predictor: PredictorConfig = Field(default_factory=lambda: PredictorConfig(rule="flat_tail"))
    """flat_tail (the rule of docs/random_features.md's results), not the cells' ``auto``:
    P_s has beta = 0 here, where a full_rank operator is a projection onto the features' span."""

    @field_validator("d")
    @classmethod
    def _dimension(cls, d: int) -> int:
        if d < 2:
            raise ValueError(f"d must be at least 2 (inputs live on the sphere S^(d-1)), got {d}")
        return d

    @field_validator("m_teachers")
    @classmethod
    def _teachers(cls, widths: list[int], info: ValidationInfo) -> list[int]:
        if not widths:
            raise ValueError("give at least one teacher width M_TE")
        if len(set(widths)) != len(widths) or any(w < 1 for w in widths):
            raise ValueError(f"teacher widths must be distinct positive integers, got {widths}")
        m_student = info.data.get("m_student")
        too_wide = [w for w in widths if m_student is not None and w > m_student]
        if too_wide:
            raise ValueError(
                f"teacher widths {too_wide} exceed the student width m_student={m_student}; "
                "the student must be at least as wide as every teacher (M_TE <= M_ST)"
            )
        return sorted(widths)

    @field_validator("report_times")
    @classmethod
    def _times(cls, times: list[float]) -> list[float]:
        if not times:
            raise ValueError("give at least one report time")
        bad = [t for t in times if t <= 0]
        if bad:
            raise ValueError(
                f"gradient-flow times must be > 0 (t < 0 is undefined, t = 0 is the untrained student f = 0), got {bad}"
            )
        return sorted(times)

    @field_validator("predictor_samples")
    @classmethod
    def _enough_samples(cls, n: int, info: ValidationInfo) -> int:
        widths = info.data.get("m_teachers") or []
        if widths and n <= max(widths):
            raise ValueError(
                f"predictor_samples={n} is too small for teacher width {max(widths)}: the centred "
                "teacher feature matrix must have full column rank, so it must exceed max(m_teachers)"
            )
        return n


#: the settings of the paper's Figure 2 that ``--paper`` imposes on top of a config file
PAPER_SETTINGS: dict[str, Any] = {"d": 32, "m_student": 16384, "m_teachers": [16, 32, 64, 128, 256]}


# ------------------------------------------------------------------ one repeat


@dataclass
class RepeatResult:
    """Everything measured in one repeat (one draw of beta, student and teacher features).

    Arrays are indexed [teacher] or [teacher, time]; ``best_*`` use the oracle stopping
    time: the grid time with the smallest population error (it uses f*).
    """

    repeat: int
    m_teachers: list[int]
    times: list[float]
    report_times: list[float]
    teacher_loss: list[float]
    student_loss: list[list[float]]
    report_student_loss: list[list[float]]
    best_time: list[float]
    best_student_loss: list[float]
    mc_teacher_loss: list[float]
    mc_teacher_loss_se: list[float]
    mc_best_student_loss: list[float]
    mc_best_student_loss_se: list[float]
    predictor_M: list[list[float]] = field(default_factory=list)
    predictor_M_F: list[list[float]] = field(default_factory=list)
    predictor_predgap_hat: list[list[float]] = field(default_factory=list)
    predictor_k_w: list[int] = field(default_factory=list)
    predictor_k_s: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RepeatResult:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def _mc_mean_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard errors of a (n, k) array of per-sample losses."""
    return values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])


def _mc_losses(
    X: np.ndarray, beta: np.ndarray, U_s: np.ndarray, A_s: np.ndarray, teachers: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Monte-Carlo L_TE and L_ST (student weights in the columns of A_s) on the sample X."""
    sq_te, sq_st = [], []
    for start in range(0, X.shape[0], _SAMPLE_BLOCK):
        Xb = X[start : start + _SAMPLE_BLOCK]
        f_star = Xb @ beta
        f_te = np.column_stack([relu_features(Xb, U) @ a for U, a in teachers])
        f_st = relu_features(Xb, U_s) @ A_s
        sq_te.append((f_te - f_star[:, None]) ** 2)
        sq_st.append((f_st - f_star[:, None]) ** 2)
    te_mean, te_se = _mc_mean_se(np.vstack(sq_te))
    st_mean, st_se = _mc_mean_se(np.vstack(sq_st))
    return te_mean, te_se, st_mean, st_se


def simulate_repeat(cfg: RandomFeaturesConfig, repeat: int, *, with_predictor: bool = True) -> RepeatResult:
    """Run one repeat: draw beta and features (seeded by ``(cfg.seed, repeat)``), fit the
    teachers, run the student's gradient flow, and measure population losses and M.

    Teachers of different widths are nested (the first M_TE rows of one draw), which
    lowers the variance of trends across M_TE. ``with_predictor=False`` skips M.
    """
    streams = np.random.SeedSequence([cfg.seed, repeat]).spawn(5)
    rng_beta, rng_st, rng_te, rng_mc, rng_pred = (np.random.default_rng(s) for s in streams)
    d = cfg.d
    beta = sample_sphere(1, d, rng_beta)[0]
    U_s = sample_sphere(cfg.m_student, d, rng_st)
    U_te_all = sample_sphere(max(cfg.m_teachers), d, rng_te)
    times = cfg.time_grid.values()
    report_times = np.asarray(cfg.report_times)

    log.info("repeat %d: eigendecomposition of the %d x %d student Gram", repeat, cfg.m_student, cfg.m_student)
    mu, V = gram_eigenbasis(feature_gram(U_s, U_s), overwrite=True)
    c_s = target_moment(U_s, beta)

    teachers: list[tuple[np.ndarray, np.ndarray]] = []
    rows: list[_TeacherRow] = []
    for m in cfg.m_teachers:
        U_t = U_te_all[:m]
        gram_t, moment_t = feature_gram(U_t, U_t), target_moment(U_t, beta)
        a_t = least_squares(gram_t, moment_t, cfg.teacher_ridge)
        b_s = feature_gram(U_s, U_t) @ a_t  # E phi_ST f_TE
        curve = flow_losses(mu, V, b_s, c_s, 1.0 / d, times)
        best = int(np.argmin(curve))
        if best in (0, len(times) - 1):
            log.warning("M_TE=%d: the best stopping time %g is at the edge of time_grid; widen it", m, times[best])
        teachers.append((U_t, a_t))
        rows.append(
            {
                "teacher_loss": quadratic_loss(a_t, gram_t, moment_t, 1.0 / d),
                "curve": curve,
                "report": flow_losses(mu, V, b_s, c_s, 1.0 / d, report_times),
                "best_time": float(times[best]),
                "best_weights": gradient_flow_weights(mu, V, b_s, float(times[best])),
            }
        )
    del V

    X_mc = sample_sphere(cfg.mc_check_samples, d, rng_mc)
    A_best = np.column_stack([r["best_weights"] for r in rows])
    te_mc, te_se, st_mc, st_se = _mc_losses(X_mc, beta, U_s, A_best, teachers)

    result = RepeatResult(
        repeat=repeat,
        m_teachers=list(cfg.m_teachers),
        times=times.tolist(),
        report_times=report_times.tolist(),
        teacher_loss=[r["teacher_loss"] for r in rows],
        student_loss=[r["curve"].tolist() for r in rows],
        report_student_loss=[r["report"].tolist() for r in rows],
        best_time=[r["best_time"] for r in rows],
        best_student_loss=[float(r["curve"].min()) for r in rows],
        mc_teacher_loss=te_mc.tolist(),
        mc_teacher_loss_se=te_se.tolist(),
        mc_best_student_loss=st_mc.tolist(),
        mc_best_student_loss_se=st_se.tolist(),
    )
    if with_predictor:
        _add_predictor(result, cfg, beta, U_s, teachers, sample_sphere(cfg.predictor_samples, d, rng_pred))
    return result


def with_ridge(op: PrincipalOperator, beta: float) -> PrincipalOperator:
    """``op`` with ridge ``beta``: k and gamma depend only on the spectrum, so only the
    weights lambda / (lambda + beta + gamma) change (saves one SVD per stopping time)."""
    lam = op.eigenvalues[: op.k]
    return replace(op, beta=beta, weights=lam / (lam + beta + op.gamma))


def _add_predictor(
    result: RepeatResult,
    cfg: RandomFeaturesConfig,
    beta: np.ndarray,
    U_s: np.ndarray,
    teachers: list[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
) -> None:
    """Fill the predictor fields: M, M_F, PredGap_hat per teacher and report time.

    H_w, H_s are the teacher and student features on the sample X and y = f*(X). beta_w
    is the teacher's ridge and beta_s = 1 / (2 t), the ridge that gradient flow stopped at
    t mimics under the convention L = E(phi^T a - y)^2: the flow's filter 1 - exp(-2 t mu)
    and ridge's mu / (mu + beta) agree to first order in mu when beta = 1 / (2 t).
    """
    p = cfg.predictor
    base = principal_operator(relu_features(X, U_s), 0.0, rule=p.rule, tau=p.tau, k=p.k_s, c=p.c)
    ops_s = [with_ridge(base, 1.0 / (2.0 * t)) for t in result.report_times]
    y = X @ beta
    for U_t, _a in teachers:
        op_w = principal_operator(relu_features(X, U_t), cfg.teacher_ridge, rule=p.rule, tau=p.tau, k=p.k_w, c=p.c)
        out = [predict_from_operators(op_w, op_s, y, config=p) for op_s in ops_s]
        result.predictor_M.append([o.M for o in out])
        result.predictor_M_F.append([o.M_F for o in out])
        gaps = []
        for o in out:
            assert o.predgap_hat is not None  # y was given
            gaps.append(float(o.predgap_hat))
        result.predictor_predgap_hat.append(gaps)
        result.predictor_k_w.append(op_w.k)
    result.predictor_k_s = [op.k for op in ops_s]
