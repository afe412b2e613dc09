"""How often a bootstrap resample leaves the partial Spearman correlation undefined (the
baseline's ranks explain a side exactly), by number of weak models.

    python benchmarks/partial_undefined.py [--models 8 12 32] [--tables 20] [--n-boot 2000]

Each table draws a latent quality q per weak model and M = q + 0.5 e, baseline = q + 0.5 e',
measured = q + 0.3 e'' (rank correlations about 0.8 between M and the baseline); the
resamples draw models with replacement, as the evaluation's cluster bootstrap does.
"""

from __future__ import annotations

import argparse

import numpy as np

from molw2s.analysis.paired import _partial_spearman_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, nargs="+", default=[8, 12, 32])
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--n-boot", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for n in args.models:
        undefined = 0
        for _ in range(args.tables):
            q = rng.normal(size=n)
            m, base, measured = q + 0.5 * rng.normal(size=n), q + 0.5 * rng.normal(size=n), q + 0.3 * rng.normal(size=n)
            picks = np.array([rng.integers(0, n, size=n) for _ in range(args.n_boot)])
            undefined += int(np.isnan(_partial_spearman_rows(m[picks], measured[picks], base[picks])).sum())
        total = args.tables * args.n_boot
        print(f"{n:3d} weak models: {undefined} of {total} resamples undefined ({undefined / total:.1%})")


if __name__ == "__main__":
    main()
