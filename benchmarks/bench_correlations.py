"""The evaluation's cluster bootstrap of correlations: ``molw2s.analysis.correlations``
(numpy ranks, Pearson and Kendall tau-b) against the same bootstrap calling
``scipy.stats`` (``spearmanr``, ``kendalltau``, ``pearsonr``) per resample, the obvious
way to write it. Same table, same seed: the intervals must agree to rounding, and the
script checks that before printing the ratio.

The table is a sweep's shape: ``--models`` weak models x ``--seeds`` seeds, one predictor
and one measured column; ``--n-boot`` resamples, the three methods each.

    python benchmarks/bench_correlations.py [--models 8] [--seeds 3] [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd
from scipy import stats

from molw2s.analysis import correlations
from molw2s.analysis.correlations import bootstrap_correlations


def scipy_correlation(x: np.ndarray, y: np.ndarray, method: str) -> float:
    """The reference: scipy.stats per call (NaN when either side is constant)."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    fn = {"spearman": stats.spearmanr, "kendall": stats.kendalltau, "pearson": stats.pearsonr}[method]
    return float(fn(x, y).statistic)


def table(n_models: int, n_seeds: int) -> pd.DataFrame:
    """A predictor M and a measured error, correlated across weak models, with seed noise."""
    rng = np.random.default_rng(0)
    quality = rng.normal(size=n_models)
    rows = [
        {"weak": f"w{i:02d}", "seed": s, "M": q + 0.3 * rng.normal(), "err_w2s": q + 0.5 * rng.normal()}
        for i, q in enumerate(quality)
        for s in range(n_seeds)
    ]
    return pd.DataFrame(rows)


def run(frame: pd.DataFrame, n_boot: int) -> tuple[pd.DataFrame, float]:
    """The bootstrap's results and its wall time."""
    t0 = time.perf_counter()
    out = bootstrap_correlations(frame, ["M"], ["err_w2s"], n_boot=n_boot)
    return pd.DataFrame([r.to_dict() for r in out]), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    frame = table(args.models, args.seeds)

    ours, t_ours = run(frame, args.n_boot)
    original = correlations.correlation
    correlations.correlation = scipy_correlation  # the same bootstrap, scipy per resample
    try:
        reference, t_scipy = run(frame, args.n_boot)
    finally:
        correlations.correlation = original
    cols = ["value", "ci_low", "ci_high"]
    gap = float(np.nanmax(np.abs(ours[cols].to_numpy() - reference[cols].to_numpy())))
    assert gap < 1e-9, f"the two bootstraps disagree by {gap}"

    print(f"machine: {platform.machine()}, {platform.python_version()}")
    print(f"{args.models} weak models x {args.seeds} seeds, {args.n_boot} resamples, spearman + kendall + pearson")
    print(ours[["method", *cols]].to_string(index=False))
    print(f"largest difference from the scipy bootstrap: {gap:.1e}")
    print(f"scipy.stats per resample: {t_scipy:.2f} s")
    print(f"molw2s (numpy):           {t_ours:.2f} s  ({t_scipy / t_ours:.1f}x)")


if __name__ == "__main__":
    main()
