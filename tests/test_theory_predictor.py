"""M, M_F and PredGap_hat: the factored algorithm against the naive dense reference and
against closed forms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from molw2s.errors import ConfigError, DataError
from molw2s.theory.dense import dense_operator, dense_predictor
from molw2s.theory.predictor import PredictorConfig, gap_vector, operator_norms, predict_from_operators, predict_w2s
from molw2s.theory.principal import principal_operator
from molw2s.w2s.features import fit_scaling


def _pair(n: int, d_w: int, d_s: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A strong representation with a decaying spectrum, a weak one that sees it through noise."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 6))
    H_s = latent @ rng.normal(size=(6, d_s)) * 2.0 + rng.normal(size=(n, d_s)) * 0.5
    H_w = (
        (latent + 0.6 * rng.normal(size=(n, 6))) @ rng.normal(size=(6, d_w)) * 1.5
        + rng.normal(size=(n, d_w)) * 0.7
        + 4.0
    )
    y = latent[:, 0] - 0.5 * latent[:, 4] + 0.1 * rng.normal(size=n)
    return H_w, H_s, y


@pytest.mark.parametrize(("n", "d_w", "d_s"), [(90, 20, 35), (50, 120, 80), (70, 200, 10)])
@pytest.mark.parametrize("rule", ["flat_tail", "tau", "fixed"])
def test_factored_matches_dense_reference(n, d_w, d_s, rule):
    H_w, H_s, y = _pair(n, d_w, d_s)
    kw = {"k_w": 4, "k_s": 5} if rule == "fixed" else {"tau": 0.8}
    res = predict_w2s(H_w, H_s, beta_w=0.3, beta_s=0.02, y=y, rule=rule, **kw)
    M, M_F, gap = dense_predictor(H_w, H_s, beta_w=0.3, beta_s=0.02, k_w=res.k_w, k_s=res.k_s, y=y)
    assert pytest.approx(M, rel=1e-8) == res.M
    assert pytest.approx(M_F, rel=1e-8) == res.M_F
    assert res.predgap_hat == pytest.approx(gap, rel=1e-8)
    assert 0.0 <= res.M <= 1.0


def test_predict_from_shared_operators_matches_predict_w2s():
    H_w, H_s, y = _pair(60, 15, 25, seed=4)
    op_w = principal_operator(H_w, 0.1, rule="tau", tau=0.7, scale="trace")
    op_s = principal_operator(H_s, 0.2, rule="tau", tau=0.7, scale="trace")
    res = predict_from_operators(op_w, op_s, y, config=PredictorConfig(rule="tau", tau=0.7))
    ref = predict_w2s(H_w, H_s, beta_w=0.1, beta_s=0.2, y=y, rule="tau", tau=0.7, scale="trace")
    assert res.to_dict() == ref.to_dict()
    assert res.scale == "trace"  # taken from the operators


def test_per_example_gap_matches_dense():
    H_w, H_s, y = _pair(60, 15, 25, seed=3)
    op_w, op_s = principal_operator(H_w, 0.1), principal_operator(H_s, 0.1)
    B = dense_operator(H_s, 0.1, op_s.k) @ (np.eye(60) - dense_operator(H_w, 0.1, op_w.k))
    np.testing.assert_allclose(gap_vector(op_w, op_s, y), B @ (y - y.mean()), atol=1e-10)
    res = predict_w2s(H_w, H_s, beta_w=0.1, beta_s=0.1, y=y)
    np.testing.assert_allclose(res.gap, B @ (y - y.mean()), atol=1e-10)
    assert res.predgap_hat == pytest.approx(float(res.gap @ res.gap) / 60)


def test_same_representation_closed_form():
    # P_w = P_s = P: P (I - P) has eigenvalues d (1 - d)
    _H_w, H_s, _ = _pair(80, 10, 30)
    res = predict_w2s(H_s, H_s, beta_w=0.5, beta_s=0.5)
    d = principal_operator(H_s, 0.5).weights
    assert pytest.approx(np.max(d * (1 - d)), rel=1e-10) == res.M
    assert pytest.approx(np.sum((d * (1 - d)) ** 2), rel=1e-10) == res.M_F


def test_orthogonal_principal_spaces_closed_form():
    # exactly orthogonal centered column spaces: C = 0, so M = max d_s, M_F = sum d_s^2
    n = 40
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(np.column_stack([np.ones(n), rng.normal(size=(n, 6))]))[0][:, 1:]  # orthonormal, orthogonal to 1
    H_s = Q[:, :3] * np.array([30.0, 20.0, 10.0])
    H_w = Q[:, 3:5] * np.array([25.0, 15.0])
    beta = 0.4
    lam_s = np.array([30.0, 20.0, 10.0]) ** 2 / n
    d_s = lam_s / (lam_s + beta)  # gamma = 0: all variance is principal
    y = Q[:, 0] * 5.0
    res = predict_w2s(H_w, H_s, beta_w=beta, beta_s=beta, y=y, rule="fixed", k_w=2, k_s=3)
    assert res.gamma_s == pytest.approx(0.0, abs=1e-12)
    assert pytest.approx(d_s.max(), rel=1e-10) == res.M
    assert pytest.approx(np.sum(d_s**2), rel=1e-10) == res.M_F
    assert res.predgap_hat == pytest.approx((5.0 * d_s[0]) ** 2 / n, rel=1e-10)


def test_constant_representations():
    H_w, H_s, y = _pair(50, 10, 12)
    const = np.ones((50, 10))
    d_s = principal_operator(H_s, 0.1).weights
    assert pytest.approx(d_s.max()) == predict_w2s(const, H_s, beta_w=0.1, beta_s=0.1).M  # P_w = 0
    res = predict_w2s(H_w, const, beta_w=0.1, beta_s=0.1, y=y)  # P_s = 0
    assert res.M == 0.0 and res.M_F == 0.0 and res.predgap_hat == 0.0 and res.k_s == 0


def test_invariances():
    H_w, H_s, y = _pair(60, 12, 20, seed=1)
    base = predict_w2s(H_w, H_s, beta_w=0.1, beta_s=0.1, y=y)
    R = np.linalg.qr(np.random.default_rng(2).normal(size=(20, 20)))[0]
    rotated = predict_w2s(H_w, H_s @ R + 3.0, beta_w=0.1, beta_s=0.1, y=y + 10.0)
    assert pytest.approx(base.M, rel=1e-9) == rotated.M
    assert rotated.predgap_hat == pytest.approx(base.predgap_hat, rel=1e-9)
    trace = predict_w2s(H_w, H_s, beta_w=0.1, beta_s=0.1, scale="trace")
    trace_big = predict_w2s(H_w, 50.0 * H_s, beta_w=0.1, beta_s=0.1, scale="trace")
    plain_big = predict_w2s(H_w, 50.0 * H_s, beta_w=0.1, beta_s=0.1)
    assert pytest.approx(trace.M, rel=1e-9) == trace_big.M
    assert abs(plain_big.M - base.M) > 1e-3  # without scaling, beta means something else


def test_scale_factor_override_is_the_heads_scaling():
    H_w, H_s, _ = _pair(50, 10, 14)
    res = predict_w2s(H_w, H_s, beta_w=0.1, beta_s=0.2, scale="trace", factor_w=3.0)
    Z_w = fit_scaling(H_w, "none").transform(H_w) / 3.0
    Z_s = fit_scaling(H_s, "trace").transform(H_s)
    M, _, _ = dense_predictor(Z_w, Z_s, beta_w=0.1, beta_s=0.2, k_w=res.k_w, k_s=res.k_s)
    assert pytest.approx(M, rel=1e-8) == res.M


def test_result_to_dict_is_json_and_lists_settings():
    H_w, H_s, y = _pair(40, 8, 9)
    row = predict_w2s(H_w, H_s, beta_w=0.1, beta_s=0.2, y=y).to_dict()
    assert {"M", "M_F", "predgap_hat", "k_w", "k_s", "gamma_w", "gamma_s", "rule", "scale", "beta_w", "beta_s"} <= set(
        row
    )
    assert "gap" not in row
    json.dumps(row)
    assert predict_w2s(H_w, H_s, beta_w=0.1, beta_s=0.2).predgap_hat is None


def test_bad_input():
    H_w, H_s, y = _pair(30, 5, 6)
    with pytest.raises(DataError, match=r"row counts differ \(weak_representation: 29"):
        predict_w2s(H_w[:-1], H_s, beta_w=0.1, beta_s=0.1)
    y_bad = y.copy()
    y_bad[2] = np.nan
    with pytest.raises(DataError, match="row 2.*labels contains nan"):
        predict_w2s(H_w, H_s, beta_w=0.1, beta_s=0.1, y=y_bad)
    with pytest.raises(DataError, match="29 rows but the representation has 30"):
        predict_w2s(H_w, H_s, beta_w=0.1, beta_s=0.1, y=y[1:])
    with pytest.raises(ConfigError, match="tau"):
        predict_w2s(H_w, H_s, beta_w=0.1, beta_s=0.1, rule="tau", tau=1.5)
    with pytest.raises(DataError, match="n_hat > k"):
        predict_w2s(H_w, H_s, beta_w=0.1, beta_s=0.1, rule="fixed", k_w=2, k_s=40)
    with pytest.raises(DataError, match="same D_s"):
        operator_norms(principal_operator(H_w[:20], 0.1), principal_operator(H_s, 0.1))
