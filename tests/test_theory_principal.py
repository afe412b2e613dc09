"""Principal operators: the k rules, gamma, and P as the ridge smoother it stands for."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from molw2s.errors import ConfigError, DataError
from molw2s.theory.principal import choose_k, principal_operator, resolve_rule, tail_diagnostics
from molw2s.theory.synthetic import make_family
from molw2s.w2s.heads import RidgeHead


def _spiked(n: int, d: int, spikes: list[float], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(n, d)) * 0.1
    H[:, : len(spikes)] += rng.normal(size=(n, len(spikes))) * np.sqrt(spikes)
    return H


def test_flat_tail_rule_on_a_known_spectrum():
    # k = 1: is lambda_2 = 8 <= 3 * mean(8, 1, 1, 1, 1, 1, 1) = 6? no; k = 2: 1 <= 3 * 1, yes
    assert choose_k(np.array([10.0, 8.0] + [1.0] * 6), "flat_tail") == 2
    # the mean includes lambda_{k+1} itself: 5 <= 3 * mean(5, 1, 1, 1, 1) = 5.4, so k = 1
    assert choose_k(np.array([10.0, 5.0, 1.0, 1.0, 1.0, 1.0]), "flat_tail") == 1
    lam = np.array([30.0, 10.0, 1.0, 1.0, 1.0])  # mean(10, 1, 1, 1) = 3.25
    assert choose_k(lam, "flat_tail") == 2  # 10 > 3 * 3.25
    assert choose_k(lam, "flat_tail", c=5.0) == 1  # 10 <= 5 * 3.25
    assert choose_k(lam, "flat_tail", c=0.5) == 5  # nothing qualifies: k = r
    assert choose_k(np.array([4.0]), "flat_tail") == 1  # r = 1
    assert choose_k(np.array([]), "flat_tail") == 0  # constant representation


def test_tau_and_fixed_rules():
    lam = np.array([5.0, 3.0, 1.0, 1.0])  # cumulative fractions 0.5, 0.8, 0.9, 1.0
    assert choose_k(lam, "tau", tau=0.5) == 1
    assert choose_k(lam, "tau", tau=0.8) == 2
    assert choose_k(lam, "tau", tau=0.85) == 3
    assert choose_k(lam, "tau", tau=1.0) == 4
    assert choose_k(lam, "fixed", k=3) == 3
    for tau in (0.0, -0.1, 1.01):
        with pytest.raises(ConfigError, match=r"tau must lie in \(0, 1\]"):
            choose_k(lam, "tau", tau=tau)
    with pytest.raises(ConfigError, match="needs k"):
        choose_k(lam, "fixed")
    with pytest.raises(ConfigError, match="numerical rank 4"):
        choose_k(lam, "fixed", k=5)
    with pytest.raises(ConfigError, match="rule must be one of"):
        choose_k(lam, "elbow")  # type: ignore[arg-type]


def test_P_is_the_ridge_smoother_on_the_principal_part():
    H = _spiked(70, 25, [9.0, 4.0, 2.0])
    y = np.random.default_rng(1).normal(size=70) + 3.0
    op = principal_operator(H, 0.07, rule="fixed", k=3)
    Hc = H - H.mean(axis=0)
    _U, s, Vt = np.linalg.svd(Hc, full_matrices=False)
    H_k = Hc @ Vt[:3].T  # the principal part
    gamma = np.sum(s[3:] ** 2) / 70 / 70
    assert op.gamma == pytest.approx(gamma, rel=1e-10)
    fitted = Ridge(alpha=70 * (0.07 + gamma)).fit(H_k, y).predict(H_k)  # ridge with beta + gamma
    np.testing.assert_allclose(op.apply(y), fitted - y.mean(), atol=1e-10)
    np.testing.assert_allclose(op.eigenvalues[:3], s[:3] ** 2 / 70, rtol=1e-10)


@pytest.mark.parametrize("scale", ["none", "trace"])
@pytest.mark.parametrize(("n", "d"), [(60, 12), (15, 40)])
def test_P_with_all_components_is_the_heads_in_sample_smoother(scale, n, d):
    # k = r leaves gamma = 0, so P must equal what RidgeHead(beta) fits in-sample: this
    # pins the head's beta and the operator's beta to the same scale
    H = _spiked(n, d, [5.0, 2.0], seed=2) * 4.0
    y = np.random.default_rng(3).normal(size=n)
    head = RidgeHead(0.2, scale=scale).fit(H, y)
    op = principal_operator(H, 0.2, rule="fixed", k=min(n - 1, d), scale=scale)
    assert op.gamma == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(op.apply(y), head.predict(H) - y.mean(), atol=1e-9)
    full = principal_operator(H, 0.2, rule="full_rank", scale=scale)  # the same operator by name
    assert (full.k, full.rule) == (min(n - 1, d), "full_rank") and full.gamma == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(full.apply(y), op.apply(y), atol=1e-12)


def test_operator_basics_and_dense_form():
    H = _spiked(40, 10, [6.0, 3.0])
    op = principal_operator(H, 0.1, rule="flat_tail")
    assert op.k == 2 and op.rank == 10 and op.n == 40
    np.testing.assert_allclose(op.U.T @ op.U, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(op.U.sum(axis=0), 0.0, atol=1e-10)  # orthogonal to constants (centered)
    assert np.all((op.weights > 0) & (op.weights < 1))
    P = op.dense()
    V = np.random.default_rng(0).normal(size=(40, 3))
    np.testing.assert_allclose(op.apply(V), P @ V, atol=1e-12)
    np.testing.assert_allclose(op.apply(V[:, 0]), P @ V[:, 0], atol=1e-12)


def test_flat_tail_finds_the_20_principal_directions():
    # theory.md section 3: 20 principal directions + 2000-dim isotropic tail, n_hat = 600
    H = make_family(600, r=20, tail_dim=2000, seed=4).strong()
    op = principal_operator(H, 0.05)  # the default, auto, finds the theory's tail here
    assert (op.k, op.rule) == (20, "flat_tail")
    assert principal_operator(H, 0.05, rule="tau", tau=0.9).k > 100  # tau pulls in tail directions


def test_rank_deficient_and_constant_inputs():
    rng = np.random.default_rng(5)
    H = rng.normal(size=(50, 4)) @ rng.normal(size=(4, 30))  # rank 4 in 30 dims
    op = principal_operator(H, 0.1, rule="tau", tau=1.0)
    assert op.rank == 4 and op.k == 4 and np.all(op.eigenvalues[4:] == 0)
    with pytest.raises(ConfigError, match="numerical rank 4"):
        principal_operator(H, 0.1, rule="fixed", k=6)
    const = principal_operator(np.full((20, 3), 7.0), 0.1)
    assert const.k == 0 and const.rank == 0 and const.gamma == 0.0
    np.testing.assert_array_equal(const.apply(rng.normal(size=20)), 0.0)  # P = 0
    one_d = principal_operator(rng.normal(size=(30, 1)), 0.1)
    assert one_d.k == 1 and one_d.gamma == 0.0


def test_bad_input():
    H = _spiked(20, 5, [3.0])
    with pytest.raises(DataError, match="fixed k=25 needs n_hat > k"):
        principal_operator(H, 0.1, rule="fixed", k=25)
    with pytest.raises(DataError, match="at least 2 rows"):
        principal_operator(H[:1], 0.1)
    H[3, 1] = np.inf
    with pytest.raises(DataError, match="row 3"):
        principal_operator(H, 0.1)
    with pytest.raises(ConfigError, match="beta"):
        principal_operator(_spiked(20, 5, [3.0]), -1.0)


SPIKES = [50.0, 20.0, 10.0]


def test_tail_diagnostics_on_synthetic_spectra():
    # spiked + a flat bulk that fills the sample (500 directions at n_hat = 600): the tail
    gamma = 500 * 0.1 / 600
    lam = np.array(SPIKES + [0.1] * 500)
    check = tail_diagnostics(lam, 600, 3, 0.05)
    assert check.gamma == pytest.approx(gamma) and check.spread == pytest.approx(0.1 / gamma)
    assert check.effective_dim == pytest.approx(500.0)
    assert check.flat and check.high_dimensional and check.ridge_like and check.has_tail
    # the same spikes over a flat but 60-dimensional bulk (d << n_hat): flat_tail's test
    # passes, but on the sample the tail is 60 directions, not gamma * I (spread 10 > c)
    small = tail_diagnostics(np.array(SPIKES + [0.1] * 60), 600, 3, 0.05)
    assert small.spread == pytest.approx(10.0) and not small.flat and not small.has_tail
    assert choose_k(np.array(SPIKES + [0.1] * 60), "flat_tail") == 3
    # a smooth power-law decay, d = 128 << n_hat = 2000: no tail at any cut
    power = np.arange(1, 129) ** -1.5
    for k in (1, choose_k(power, "flat_tail"), 100):
        assert not tail_diagnostics(power, 2000, k, 0.05).has_tail
    # a flat, high-dimensional tail far below beta: not ridge-like (negligible gamma)
    faint = tail_diagnostics(np.array(SPIKES + [1e-5] * 500), 600, 3, 0.05)
    assert faint.flat and not faint.ridge_like and not faint.has_tail
    # no tail at all
    assert not tail_diagnostics(np.array(SPIKES), 600, 3, 0.05).has_tail


def test_full_rank_and_auto_rules():
    lam = np.array(SPIKES + [0.1] * 60)
    assert choose_k(lam, "full_rank") == 63 and choose_k(np.array([]), "full_rank") == 0
    assert resolve_rule(lam, "auto", n_hat=600, beta=0.05) == "full_rank"
    assert choose_k(lam, "auto", n_hat=600, beta=0.05) == 63
    bulk = np.array(SPIKES + [0.1] * 500)
    assert resolve_rule(bulk, "auto", n_hat=600, beta=0.05) == "flat_tail"
    assert choose_k(bulk, "auto", n_hat=600, beta=0.05) == 3
    assert resolve_rule(bulk, "tau", n_hat=600, beta=0.05) == "tau"  # other rules are themselves
    with pytest.raises(ConfigError, match="needs n_hat and beta"):
        choose_k(lam, "auto")


def test_auto_resolves_per_representation():
    rng = np.random.default_rng(6)
    # a 128-d representation with power-law variances on 500 points: no tail, full ridge smoother
    H = rng.normal(size=(500, 128)) * np.arange(1, 129) ** -0.75
    op = principal_operator(H, 0.05)
    assert (op.rule, op.k, op.rank) == ("full_rank", 128, 128) and op.gamma == pytest.approx(0.0, abs=1e-12)
    assert principal_operator(H, 0.05, rule="flat_tail").k < 128
    # the synthetic family (10 principal directions, a 2000-dim tail, n_hat = 600): flat_tail
    fam = principal_operator(make_family(600, tail_dim=2000, seed=1).weak(3), 0.05)
    assert (fam.rule, fam.k) == ("flat_tail", 10)
