"""A synthetic family on which the theory provably works (theory.md section 5).

Latent z in R^{2r} per point; y = <w, z[:r]> + noise with a random unit vector w. The
strong representation is [signal * z[:r], strong tail]; weak model i is
[signal * (cos t_i z[:r] + sin t_i z[r:]), its own tail] for angles t_i in [0, 1.4].
Every tail is isotropic Gaussian noise of dimension ``tail_dim`` with total variance
``tail_var`` (each coordinate tail_var / tail_dim), independent between representations.
So the strong principal space carries all of the signal, and as t grows the weak
principal space rotates away from it: M should rise from ~0 to ~1 with t.

Representations are generated on demand from the stored latents (one seeded stream
per representation), so a family of many weak models costs the memory of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from molw2s.errors import ConfigError

#: the angles of theory.md section 5
DEFAULT_ANGLES = tuple(np.linspace(0.0, 1.4, 8))


@dataclass(frozen=True)
class SyntheticFamily:
    """Latents, labels and the recipe of the representations; see the module docstring."""

    z: np.ndarray
    y: np.ndarray
    angles: np.ndarray
    tail_dim: int
    signal: float
    tail_var: float
    seed: int

    @property
    def r(self) -> int:
        """The principal dimension of every representation (the true k)."""
        return int(self.z.shape[1]) // 2

    @property
    def n(self) -> int:
        """The number of points."""
        return int(self.z.shape[0])

    def strong(self) -> np.ndarray:
        """The strong representation (n x (r + tail_dim))."""
        return self._with_tail(self.z[:, : self.r], stream=0)

    def weak(self, i: int) -> np.ndarray:
        """Weak representation ``i`` (angle ``angles[i]``), n x (r + tail_dim)."""
        t = float(self.angles[i])
        principal = np.cos(t) * self.z[:, : self.r] + np.sin(t) * self.z[:, self.r :]
        return self._with_tail(principal, stream=i + 1)

    def _with_tail(self, principal: np.ndarray, stream: int) -> np.ndarray:
        if self.tail_dim == 0:
            return self.signal * principal
        rng = np.random.default_rng([self.seed, 1, stream])
        tail = rng.standard_normal((self.n, self.tail_dim)) * np.sqrt(self.tail_var / self.tail_dim)
        return np.hstack([self.signal * principal, tail])


def make_family(
    n: int,
    *,
    r: int = 10,
    tail_dim: int = 2000,
    angles: Sequence[float] = DEFAULT_ANGLES,
    signal: float = 1.0,
    tail_var: float = 30.0,
    noise: float = 0.1,
    seed: int = 0,
) -> SyntheticFamily:
    """``n`` points of the family (split them into D_w, D_s and test yourself).

    ``signal`` is the std of each principal coordinate (sample-covariance eigenvalue
    signal^2), ``tail_var`` the total tail variance (so gamma ~ tail_var / n_hat),
    ``noise`` the label noise std.
    """
    if n < 2 or r < 1 or tail_dim < 0:
        raise ConfigError(f"need n >= 2, r >= 1 and tail_dim >= 0; got n={n}, r={r}, tail_dim={tail_dim}")
    if signal <= 0 or tail_var < 0 or noise < 0:
        raise ConfigError(f"need signal > 0, tail_var >= 0, noise >= 0; got {signal}, {tail_var}, {noise}")
    rng = np.random.default_rng([seed, 0])
    z = rng.standard_normal((n, 2 * r))
    w = rng.standard_normal(r)
    y = z[:, :r] @ (w / np.linalg.norm(w)) + noise * rng.standard_normal(n)
    return SyntheticFamily(
        z=z,
        y=y,
        angles=np.asarray(angles, dtype=np.float64),
        tail_dim=int(tail_dim),
        signal=float(signal),
        tail_var=float(tail_var),
        seed=int(seed),
    )
