"""Controlled weak representations: what they keep of the strong one is known by construction."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from molw2s.encoders.controlled import add_noise, mix, random_subspace
from molw2s.errors import ConfigError
from molw2s.theory.baselines import linear_cka


def _strong(n: int = 300, d: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * np.linspace(3.0, 0.3, d) + 5.0


def test_random_subspace_is_an_orthonormal_projection_and_keeps_less_as_k_shrinks():
    H = _strong()
    full = random_subspace(H, 24, seed=1)
    np.testing.assert_allclose(full @ full.T, H @ H.T, rtol=1e-4)  # k = d: a rotation keeps every inner product
    assert random_subspace(H, 5, seed=1).shape == (300, 5)
    np.testing.assert_array_equal(random_subspace(H, 5, seed=1), random_subspace(H, 5, seed=1))
    cka = [linear_cka(random_subspace(H, k, seed=1), H) for k in (24, 12, 6, 2)]
    assert cka[0] == pytest.approx(1.0) and all(a > b for a, b in pairwise(cka))
    with pytest.raises(ConfigError, match="must lie in"):
        random_subspace(H, 25)


def test_noise_scales_with_the_features_and_hides_more_as_it_grows():
    H = _strong()
    assert np.array_equal(add_noise(H, 0.0), H.astype(np.float32))
    rms = np.sqrt(np.mean((H - H.mean(axis=0)) ** 2))
    assert np.std(add_noise(H, 2.0, seed=3) - H) == pytest.approx(2.0 * rms, rel=0.05)
    cka = [linear_cka(add_noise(H, s, seed=3), H) for s in (0.1, 0.5, 1.0, 3.0)]
    assert all(a > b for a, b in pairwise(cka))
    with pytest.raises(ConfigError):
        add_noise(H, -1.0)


def test_mix_weights_move_from_the_strong_to_the_other_representation():
    H = _strong()
    F = (np.random.default_rng(9).random(size=(300, 64)) < 0.2).astype(np.float32)
    assert mix(H, F, 0.3).shape == (300, 24 + 64)
    to_h = [linear_cka(mix(H, F, w), H) for w in (0.0, 0.3, 0.7, 1.0)]
    assert to_h[0] == pytest.approx(1.0) and all(a > b for a, b in pairwise(to_h))
    assert linear_cka(mix(H, F, 1.0), F) == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        mix(H, F[:10], 0.5)
