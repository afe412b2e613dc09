"""The W2S protocol against a by-hand sklearn implementation; determinism; bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from molw2s.errors import ConfigError, DataError
from molw2s.w2s.heads import HeadConfig
from molw2s.w2s.metrics import pgr, regression_metrics
from molw2s.w2s.protocol import check_indices, run_w2s


def w2s_problem(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 4))
    y = 2.0 * latent[:, 0] - latent[:, 1] + 0.2 * rng.normal(size=n) + 10.0
    H_s = latent @ rng.normal(size=(4, 12)) + 0.3 * rng.normal(size=(n, 12))
    H_w = latent[:, :1] @ rng.normal(size=(1, 6)) + 0.8 * rng.normal(size=(n, 6)) + 5.0
    order = rng.permutation(n)
    parts = {"weak_idx": order[:70], "strong_idx": order[70:150], "test_idx": order[150:]}
    return H_w, H_s, y, parts


def test_matches_a_by_hand_sklearn_protocol():
    H_w, H_s, y, p = w2s_problem()
    w, s, t = p["weak_idx"], p["strong_idx"], p["test_idx"]
    res = run_w2s(
        H_w, H_s, y, head=HeadConfig(beta=0.1, scale="none"), weak_head=HeadConfig(beta=0.3, scale="none"), **p
    )
    f_w = Ridge(alpha=len(w) * 0.3).fit(H_w[w], y[w])
    weak_labels = f_w.predict(H_w[s])
    f_w2s = Ridge(alpha=len(s) * 0.1).fit(H_s[s], weak_labels)
    f_sc = Ridge(alpha=len(s) * 0.1).fit(H_s[s], y[s])
    err = {
        name: np.mean((y[t] - f.predict(X[t])) ** 2)
        for name, f, X in [("w", f_w, H_w), ("w2s", f_w2s, H_s), ("sc", f_sc, H_s)]
    }
    assert res.err_w == pytest.approx(err["w"], rel=1e-9)
    assert res.err_w2s == pytest.approx(err["w2s"], rel=1e-9)
    assert res.err_sc == pytest.approx(err["sc"], rel=1e-9)
    assert res.pgr == pytest.approx((err["w"] - err["w2s"]) / (err["w"] - err["sc"]), rel=1e-9)
    assert res.gain == pytest.approx(err["w"] - err["w2s"], rel=1e-9)
    assert res.predgap == pytest.approx(np.mean((f_w2s.predict(H_s[t]) - f_sc.predict(H_s[t])) ** 2), rel=1e-9)
    assert res.misfit == pytest.approx(np.mean((f_w2s.predict(H_s[s]) - weak_labels) ** 2), rel=1e-9)
    assert res.rmse_w2s == pytest.approx(np.sqrt(err["w2s"]))
    assert res.mae_sc == pytest.approx(np.mean(np.abs(y[t] - f_sc.predict(H_s[t]))), rel=1e-9)
    ss_tot = np.sum((y[t] - y[t].mean()) ** 2)
    assert res.r2_w == pytest.approx(1 - err["w"] * len(t) / ss_tot, rel=1e-9)
    assert (res.beta, res.beta_w, res.solver, res.scale) == (0.1, 0.3, "ridge", "none")
    assert (res.n_weak, res.n_strong, res.n_test) == (70, 80, 50)
    assert res.err_sc < res.err_w  # the strong representation is better on this task


def test_sgd_protocol_is_deterministic_under_a_seed():
    H_w, H_s, y, p = w2s_problem(seed=2)
    head = HeadConfig(solver="sgd", lr=0.01, batch_size=16, epochs=20, seed=3, scale="trace")
    a, b = run_w2s(H_w, H_s, y, head=head, **p), run_w2s(H_w, H_s, y, head=head, **p)
    assert a.to_dict() == b.to_dict()
    c = run_w2s(H_w, H_s, y, head=head.model_copy(update={"seed": 4}), **p)
    assert c.err_w2s != a.err_w2s
    assert a.solver == "sgd" and a.beta == pytest.approx(0.05)


def test_sgd_and_ridge_protocols_agree_on_a_small_problem():
    H_w, H_s, y, p = w2s_problem(seed=3)
    ridge = run_w2s(H_w, H_s, y, head=HeadConfig(beta=0.05, scale="trace"), **p)
    sgd = run_w2s(
        H_w, H_s, y, head=HeadConfig(solver="sgd", beta=0.05, scale="trace", lr=0.1, batch_size=256, epochs=1500), **p
    )
    for key in ("err_w", "err_w2s", "err_sc", "predgap", "misfit"):
        assert getattr(sgd, key) == pytest.approx(getattr(ridge, key), rel=1e-4), key


def test_metric_helpers():
    assert pgr(2.0, 1.5, 1.0) == pytest.approx(0.5)
    assert pgr(1.0, 0.8, 1.0) is None  # no gap to recover
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert (m.mse, m.mae) == (pytest.approx(1 / 3), pytest.approx(1 / 3)) and m.r2 == pytest.approx(0.5)
    assert regression_metrics(np.ones(3), np.zeros(3)).r2 is None


def test_index_checks():
    assert check_indices(5, a=np.array([0, 1]), b=np.array([4]))["b"].dtype == np.int64
    with pytest.raises(DataError, match="weak_idx and test_idx share 1 rows"):
        check_indices(10, weak_idx=np.array([1, 2]), strong_idx=np.array([3]), test_idx=np.array([2, 5]))
    with pytest.raises(DataError, match=r"outside \[0, 10\)"):
        check_indices(10, weak_idx=np.array([1, 10]))
    with pytest.raises(DataError, match="repeats"):
        check_indices(10, weak_idx=np.array([1, 1]))
    with pytest.raises(DataError, match="integer row indices"):
        check_indices(10, weak_idx=np.array([0.5]))
    with pytest.raises(DataError, match="non-empty"):
        check_indices(10, weak_idx=np.array([], dtype=int))


def test_bad_input():
    H_w, H_s, y, p = w2s_problem()
    with pytest.raises(DataError, match="row counts differ"):
        run_w2s(H_w[:-1], H_s, y, **p)
    y_bad = y.copy()
    y_bad[17] = np.nan
    with pytest.raises(DataError, match="row 17"):
        run_w2s(H_w, H_s, y_bad, **p)
    with pytest.raises(ConfigError, match="same scale"):
        run_w2s(H_w, H_s, y, head=HeadConfig(scale="trace"), weak_head=HeadConfig(scale="none"), **p)
    with pytest.raises(DataError, match="at least 2 rows"):
        run_w2s(H_w, H_s, y, weak_idx=np.array([0]), strong_idx=p["strong_idx"], test_idx=p["test_idx"])


def test_protocol_measures_only():
    H_w, H_s, y, p = w2s_problem(seed=1)
    row = run_w2s(H_w, H_s, y, **p).to_dict()
    assert "M" not in row and "cka" not in row
    assert row["scale"] == "trace" and row["scale_factor_s"] == pytest.approx(
        np.sqrt(H_s[p["strong_idx"]].var(axis=0).mean())
    )
