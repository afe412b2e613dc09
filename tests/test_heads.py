"""Linear heads: ridge against sklearn, SGD against ridge, scaling, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from molw2s.errors import ConfigError, DataError, MolW2SError
from molw2s.w2s.features import fit_scaling
from molw2s.w2s.heads import HeadConfig, RidgeHead, SGDHead, make_head, ridge_coefficients


def _problem(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, size=d) + rng.normal(size=d)
    y = H @ rng.normal(size=d) + 0.3 * rng.normal(size=n) + 4.0
    return H, y


@pytest.mark.parametrize(("n", "d"), [(120, 15), (40, 90)])  # primal (d <= n) and dual (d > n) systems
@pytest.mark.parametrize("beta", [1e-3, 0.05, 2.0])
def test_ridge_matches_sklearn(n, d, beta):
    H, y = _problem(n, d)
    H_new, _ = _problem(30, d, seed=1)
    ours = RidgeHead(beta, scale="none").fit(H, y)
    ref = Ridge(alpha=n * beta).fit(H, y)  # theory's (1/n) sum + beta ||theta||^2 is sklearn's alpha = n beta
    np.testing.assert_allclose(ours.predict(H_new), ref.predict(H_new), rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-8)
    assert ours.intercept_ == pytest.approx(ref.intercept_, abs=1e-8)


def test_trace_scaling_is_ridge_on_rescaled_features():
    H, y = _problem(80, 20)
    factor = np.sqrt(H.var(axis=0).mean())
    ours = RidgeHead(0.1, scale="trace").fit(H, y)
    ref = Ridge(alpha=80 * 0.1).fit(H / factor, y)
    np.testing.assert_allclose(ours.predict(H), ref.predict(H / factor), atol=1e-8)
    assert ours.scaling_.factor == pytest.approx(factor)
    # trace scaling makes the fit invariant to a global rescaling of the features
    np.testing.assert_allclose(
        RidgeHead(0.1, scale="trace").fit(7.0 * H, y).predict(7.0 * H), ours.predict(H), atol=1e-8
    )
    scaled_up = RidgeHead(0.1, scale="none").fit(7.0 * H, y).predict(7.0 * H)
    assert not np.allclose(scaled_up, RidgeHead(0.1, scale="none").fit(H, y).predict(H))


def test_label_standardisation_does_not_change_the_ridge_fit():
    H, y = _problem(60, 10)
    a = RidgeHead(0.2, scale="none").fit(H, y)
    b = RidgeHead(0.2, scale="none").fit(H, y, label_mean=-3.0, label_std=11.0)
    np.testing.assert_allclose(a.predict(H), b.predict(H), atol=1e-10)
    assert b.label_mean_ == -3.0 and b.label_std_ == 11.0


def test_ridge_coefficients_solves_the_normal_equations():
    rng = np.random.default_rng(3)
    for n, d in [(50, 8), (8, 50)]:
        Z = rng.normal(size=(n, d))
        Z -= Z.mean(axis=0)
        t = rng.normal(size=n)
        t -= t.mean()
        theta = ridge_coefficients(Z, t, 0.3)
        grad = Z.T @ (Z @ theta - t) / n + 0.3 * theta  # half the gradient of the objective
        np.testing.assert_allclose(grad, 0.0, atol=1e-12)


def test_sgd_full_batch_converges_to_ridge():
    H, y = _problem(256, 8)
    ridge = RidgeHead(0.1, scale="none").fit(H, y)
    sgd = SGDHead(weight_decay=0.2, lr=0.2, batch_size=256, epochs=400, scale="trace").fit(H, y)
    ridge_t = RidgeHead(0.1, scale="trace").fit(H, y)
    assert sgd.beta == pytest.approx(0.1)
    scale = np.abs(ridge_t.predict(H)).max()
    assert np.abs(sgd.predict(H) - ridge_t.predict(H)).max() < 1e-5 * scale
    assert not np.allclose(ridge.predict(H), ridge_t.predict(H), atol=1e-3)  # the scaling mattered


def test_sgd_minibatch_ends_near_ridge_and_is_seeded():
    H, y = _problem(300, 6)
    ridge = RidgeHead(0.05, scale="none").fit(H, y)
    kw = {"weight_decay": 0.1, "lr": 0.02, "batch_size": 32, "epochs": 150, "scale": "none"}
    a, b = SGDHead(seed=1, **kw).fit(H, y), SGDHead(seed=1, **kw).fit(H, y)
    c = SGDHead(seed=2, **kw).fit(H, y)
    np.testing.assert_array_equal(a.predict(H), b.predict(H))
    assert not np.array_equal(a.predict(H), c.predict(H))
    rel = np.abs(a.coef_ - ridge.coef_).max() / np.abs(ridge.coef_).max()
    assert rel < 0.02


def test_sgd_divergence_is_an_error_not_nan():
    H, y = _problem(64, 5)
    with pytest.raises(MolW2SError, match="diverged"):
        SGDHead(lr=50.0, batch_size=64, epochs=50, scale="none").fit(100.0 * H, y)


def test_make_head_and_config():
    assert isinstance(make_head("ridge", beta=0.3), RidgeHead)
    sgd = make_head("sgd", beta=0.3, epochs=5)
    assert isinstance(sgd, SGDHead) and sgd.weight_decay == pytest.approx(0.6) and sgd.beta == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="solver"):
        make_head("lasso")
    with pytest.raises(ConfigError, match="either beta or weight_decay"):
        make_head("sgd", beta=0.1, weight_decay=0.2)
    head = HeadConfig(solver="sgd", beta=0.25, epochs=3).build()
    assert isinstance(head, SGDHead) and head.beta == pytest.approx(0.25) and head.epochs == 3
    assert RidgeHead().beta == SGDHead().beta == 0.05  # defaults solve the same objective


def test_constant_representation_predicts_the_mean_and_d1_works():
    rng = np.random.default_rng(0)
    y = rng.normal(size=30)
    H = np.ones((30, 4))
    for scale in ("none", "trace"):
        head = RidgeHead(0.1, scale=scale).fit(H, y)
        np.testing.assert_allclose(head.predict(H), y.mean(), atol=1e-12)
    x = rng.normal(size=(30, 1))
    pred = RidgeHead(1e-6, scale="none").fit(x, 2 * x[:, 0] + 1).predict(x)
    np.testing.assert_allclose(pred, 2 * x[:, 0] + 1, atol=1e-4)


def test_constant_labels_give_a_constant_prediction():
    H, _ = _problem(20, 3)
    np.testing.assert_allclose(RidgeHead(scale="none").fit(H, np.full(20, 2.5)).predict(H), 2.5)


def test_bad_input_is_a_clear_error():
    H, y = _problem(20, 3)
    bad = H.copy()
    bad[7, 2] = np.nan
    with pytest.raises(DataError, match=r"row 7, column '2'.*nan"):
        RidgeHead().fit(bad, y)
    y_inf = y.copy()
    y_inf[4] = np.inf
    with pytest.raises(DataError, match=r"row 4.*labels contains inf"):
        RidgeHead().fit(H, y_inf)
    with pytest.raises(DataError, match="19 rows but the representation has 20"):
        RidgeHead().fit(H, y[:-1])
    with pytest.raises(DataError, match="2-D"):
        RidgeHead().fit(H[:, 0], y)
    with pytest.raises(MolW2SError, match="not fitted"):
        RidgeHead().predict(H)
    with pytest.raises(MolW2SError, match="2 features but the head was fitted on 3"):
        RidgeHead().fit(H, y).predict(H[:, :2])
    with pytest.raises(ConfigError, match="beta"):
        RidgeHead(beta=0.0).fit(H, y)  # sklearn convention: parameters are validated in fit
    with pytest.raises(ConfigError, match="scale"):
        RidgeHead(scale="zscore").fit(H, y)
    with pytest.raises(ConfigError, match="lr"):
        SGDHead(lr=-1.0).fit(H, y)


def test_fit_scaling_statistics():
    H, _ = _problem(50, 6)
    s = fit_scaling(H, "trace")
    Z = s.transform(H)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    assert Z.var(axis=0).mean() == pytest.approx(1.0)
    assert fit_scaling(H, "none").factor == 1.0
    assert fit_scaling(H, "trace", factor=2.5).factor == 2.5


def test_heads_are_scikit_learn_estimators():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    H, y = _problem(120, 6)
    head = RidgeHead(0.3, scale="trace")
    copy = clone(head)
    assert copy.get_params() == {"beta": 0.3, "scale": "trace"} and not hasattr(copy, "coef_")
    search = GridSearchCV(RidgeHead(scale="none"), {"beta": [1e-4, 1e-2, 1.0, 100.0]}, cv=3).fit(H, y)
    assert search.best_params_["beta"] < 100.0 and isinstance(search.best_estimator_, RidgeHead)
    pipe = make_pipeline(StandardScaler(), RidgeHead(0.01, scale="none")).fit(H, y)
    assert pipe.score(H, y) == pytest.approx(
        RidgeHead(0.01, scale="none")
        .fit(StandardScaler().fit_transform(H), y)
        .score(StandardScaler().fit_transform(H), y)
    )
    sgd = clone(SGDHead(weight_decay=0.2, epochs=3, seed=5))
    assert sgd.get_params()["weight_decay"] == 0.2 and sgd.beta == pytest.approx(0.1)
    assert (
        GridSearchCV(SGDHead(epochs=5, lr=0.05, scale="none"), {"weight_decay": [0.0, 0.2]}, cv=2)
        .fit(H, y)
        .best_params_
    )
