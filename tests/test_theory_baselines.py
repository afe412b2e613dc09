"""Linear CKA against the HSIC definition with explicit centering matrices."""

from __future__ import annotations

import numpy as np
import pytest

from molw2s.errors import DataError
from molw2s.theory.baselines import linear_cka


def _hsic_cka(X: np.ndarray, Y: np.ndarray) -> float:
    n = X.shape[0]
    C = np.eye(n) - np.ones((n, n)) / n
    K, L = C @ X @ X.T @ C, C @ Y @ Y.T @ C
    return float(np.trace(K @ L) / np.sqrt(np.trace(K @ K) * np.trace(L @ L)))


@pytest.mark.parametrize(("n", "dx", "dy"), [(40, 5, 8), (12, 30, 50), (30, 3, 200)])  # both Gram forms
def test_matches_hsic_definition(n, dx, dy):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, dx)) + 2.0
    Y = np.hstack([X[:, :2] @ rng.normal(size=(2, 2)), rng.normal(size=(n, dy - 2))])
    assert linear_cka(X, Y) == pytest.approx(_hsic_cka(X, Y), rel=1e-10)


def test_invariances_and_range():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 6))
    Q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    assert linear_cka(X, 3.0 * X @ Q + 1.0) == pytest.approx(1.0)
    value = linear_cka(X, rng.normal(size=(50, 9)))
    assert 0.0 <= value < 0.5
    assert linear_cka(X, np.ones((50, 4))) == 0.0  # constant: defined as 0


def test_bad_input():
    with pytest.raises(DataError, match="row counts differ"):
        linear_cka(np.zeros((5, 2)), np.zeros((6, 2)))
