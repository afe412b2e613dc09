"""Where the theory's predictions hold on the synthetic family, and where they break.

For each setting: 8 weak models (angles 0..1.4), n = n_hat = 600, 800 fresh test
points, ridge heads (beta 0.05) on the full representations. Printed per k rule: the
strong k, M at the first and last angle, the range of measured PredGap / PredGap_hat,
and Spearman correlations of M with Err_w2s and of PredGap_hat with measured PredGap.

    python benchmarks/synthetic_validation.py
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from molw2s.experiment.cell import CellSplit, run_cell
from molw2s.experiment.config import CellSettings
from molw2s.theory.predictor import PredictorConfig
from molw2s.theory.synthetic import make_family

N_WEAK, N_HAT, N_TEST, R = 600, 600, 800, 10
SETTINGS = [  # (tail_dim, tail_var, noise)
    (2000, 30.0, 0.1),
    (2000, 100.0, 0.3),
    (600, 30.0, 0.1),
    (200, 30.0, 0.1),
    (50, 30.0, 0.1),
    (0, 0.0, 0.1),
]
RULES = {
    "true k": PredictorConfig(rule="fixed", k_w=R, k_s=R),
    "flat_tail": PredictorConfig(),
    "tau=0.9": PredictorConfig(rule="tau", tau=0.9),
}


def sweep(tail_dim: int, tail_var: float, noise: float, seed: int = 0) -> None:
    """Print one line per k rule for one family setting."""
    fam = make_family(N_WEAK + N_HAT + N_TEST, r=R, tail_dim=tail_dim, tail_var=tail_var, noise=noise, seed=seed)
    idx = np.arange(fam.n)
    split = CellSplit(0, idx[:N_WEAK], idx[N_WEAK : N_WEAK + N_HAT], idx[N_WEAK + N_HAT :])
    H_s = fam.strong()
    weak = [fam.weak(i) for i in range(len(fam.angles))]
    for name, cfg in RULES.items():
        settings = CellSettings(w2s={"head": {"scale": "none"}}, predictor={"primary": cfg, "sensitivity": []})
        rows = [run_cell(H_w, H_s, fam.y, split, settings) for H_w in weak]
        col = {
            key: np.array([r[key] for r in rows], dtype=float)
            for key in ("M", "predgap_hat", "predgap", "err_w2s", "k_s")
        }
        ratio = col["predgap"] / col["predgap_hat"]
        print(
            f"tail_dim={tail_dim:>4} tail_var={tail_var:>5} noise={noise}  {name:<9}  k_s={int(col['k_s'][0]):>3}  "
            f"M {col['M'][0]:.2f} -> {col['M'][-1]:.2f}  PredGap/PredGap_hat {ratio.min():5.2f}..{ratio.max():5.2f}  "
            f"rho(M, Err_w2s)={spearmanr(col['M'], col['err_w2s']).statistic:+.2f}  "
            f"rho(PredGap_hat, PredGap)={spearmanr(col['predgap_hat'], col['predgap']).statistic:+.2f}",
            flush=True,
        )


def main() -> None:
    for setting in SETTINGS:
        sweep(*setting)


if __name__ == "__main__":
    main()
