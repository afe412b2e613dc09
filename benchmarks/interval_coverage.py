"""Calibration of the statistics in ``molw2s.analysis.inference`` (docs/experiment.md,
"Calibrated statistics"). Prints three tables:

1. Coverage of nominal 95% intervals for Spearman's rho: data sets of n bivariate normal
   points with a known population Spearman rho_s (Pearson r = 2 sin(pi rho_s / 6)),
   n in {8, 12, 16, 24, 32}, rho_s in {0, 0.5, 0.8}. Intervals: the percentile bootstrap
   over points (the cluster bootstrap over weak models that the evaluation used before it
   moved to one point per source, with one seed per model), the Fisher-z interval with the
   Bonett-Wright variance (1 + r^2/2)/(n - 3) (``rho_interval``) and, for comparison,
   Fisher-z with Fieller's 1.06/(n - 3). For each: coverage, mean width, how often the
   interval excludes 0, and how often "excludes 0" agrees with the permutation test's
   "p <= 0.05".
2. The smallest |rho| the permutation test calls significant (``min_detectable_rho``),
   n = 5..32, two-sided and one-sided, Spearman and Kendall.
3. Power of the two-sided Spearman test against true rho_s, n = 5..32, and the smallest
   number of sources reaching 80% power (``power_min_sources``).

    python benchmarks/interval_coverage.py [--n-sets 2000] [--n-boot 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import time

import numpy as np

from molw2s.analysis.correlations import batched_correlations
from molw2s.analysis.inference import (
    exact_test_power,
    fisher_z_bounds,
    min_detectable_rho,
    permutation_pvalue,
    power_min_sources,
    rho_interval,
    spearman_normal_samples,
)

SIZES = (8, 12, 16, 24, 32)
RHOS = (0.0, 0.5, 0.8)
CONFIDENCE = 0.95
Z95 = 1.959963984540054


def percentile_bootstrap_rows(
    x: np.ndarray, y: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 50
) -> tuple[np.ndarray, np.ndarray, int]:
    """Percentile bootstrap interval of Spearman's rho for each row of x, y (n_sets, n):
    points drawn with replacement, resamples with a constant side skipped (counted)."""
    n_sets, n = x.shape
    low, high = np.empty(n_sets), np.empty(n_sets)
    degenerate = 0
    alpha = (1 - CONFIDENCE) / 2
    for start in range(0, n_sets, chunk):
        xs, ys = x[start : start + chunk], y[start : start + chunk]
        picks = rng.integers(0, n, size=(len(xs), n_boot, n))
        rows = np.arange(len(xs))[:, None, None]
        values = batched_correlations(xs[rows, picks].reshape(-1, n), ys[rows, picks].reshape(-1, n), "spearman")
        values = values.reshape(len(xs), n_boot)
        degenerate += int(np.isnan(values).sum())
        low[start : start + len(xs)], high[start : start + len(xs)] = np.nanquantile(values, [alpha, 1 - alpha], axis=1)
    return low, high, degenerate


def coverage_table(n_sets: int, n_boot: int, seed: int) -> None:
    """Table 1: coverage, width, exclusion of 0 and agreement with the test, per interval."""
    print(f"\n## Coverage of nominal 95% intervals for Spearman rho ({n_sets} data sets per row, {n_boot} resamples)")
    print("cover = fraction containing rho_s; width = mean high - low; excl0 = fraction excluding 0;")
    print("agree = fraction where 'excludes 0' equals 'two-sided permutation p <= 0.05'\n")
    header = "| n | rho_s | " + " | ".join(
        f"{name} cover | {name} width | {name} excl0 | {name} agree" for name in ("pct", "BW", "Fieller")
    )
    print(header + " | boot degenerate |")
    print("|" + "---|" * (header.count("|") + 1))
    rng = np.random.default_rng(seed)
    for n in SIZES:
        critical = min_detectable_rho(n)
        for rho_s in RHOS:
            x, y = spearman_normal_samples(rho_s, n, n_sets, rng)
            rho = batched_correlations(x, y, "spearman")
            significant = np.abs(rho) >= critical - 1e-12
            with np.errstate(divide="ignore"):  # |rho| = 1: the interval is the point
                fieller = np.tanh(np.arctanh(rho)[None] + np.array([[-1.0], [1.0]]) * Z95 * np.sqrt(1.06 / (n - 3)))
            pct_low, pct_high, degenerate = percentile_bootstrap_rows(x, y, n_boot, rng)
            cells = []
            for low, high in (
                (pct_low, pct_high),
                fisher_z_bounds(rho, n, confidence=CONFIDENCE),
                (fieller[0], fieller[1]),
            ):
                excludes = (low > 0) | (high < 0)
                cells += [
                    f"{np.mean((low <= rho_s) & (rho_s <= high)):.3f}",
                    f"{np.mean(high - low):.2f}",
                    f"{np.mean(excludes):.3f}",
                    f"{np.mean(excludes == significant):.3f}",
                ]
            print(f"| {n} | {rho_s} | " + " | ".join(cells) + f" | {degenerate} |", flush=True)


def critical_table() -> None:
    """Table 2: min_detectable_rho, n = 5..32."""
    print("\n## Smallest significant |rho| at alpha = 0.05 (exact up to n = 9, 200000 random orderings beyond)\n")
    print("| n | Spearman two-sided | Spearman one-sided | Kendall two-sided | Kendall one-sided |")
    print("|---|---|---|---|---|")
    for n in range(5, 33):
        values = [
            min_detectable_rho(n, alternative=alternative, method=method)
            for method in ("spearman", "kendall")
            for alternative in ("two-sided", "greater")
        ]
        print(f"| {n} | " + " | ".join(f"{v:.3f}" for v in values) + " |", flush=True)


def power_table(seed: int) -> None:
    """Table 3: power of the two-sided 5% Spearman test, and the minimum number of sources."""
    rhos = (0.5, 0.6, 0.7, 0.8, 0.9)
    print("\n## Power of the two-sided 5% Spearman permutation test (4000 bivariate normal data sets per cell)\n")
    print("| n | " + " | ".join(f"rho_s = {r}" for r in rhos) + " |")
    print("|---|" + "---|" * len(rhos))
    for n in range(5, 33):
        print(f"| {n} | " + " | ".join(f"{exact_test_power(n, r, seed=seed):.3f}" for r in rhos) + " |", flush=True)
    print("\nSmallest n with power >= 0.8: " + ", ".join(f"rho_s {r}: {power_min_sources(r, seed=seed)}" for r in rhos))


def issue_example() -> None:
    """The issue's case: rho = 0.74 at n = 8 (exact p = 0.037)."""
    x = np.arange(8.0)
    y = np.array([2.0, 0, 1, 6, 3, 4, 7, 5])  # sum of squared rank differences 22
    test = permutation_pvalue(x, y)
    interval = rho_interval(x, y)
    print(
        f"\nn = 8 example: rho = {test.statistic:.3f}, exact p = {test.p_value:.4f}, "
        f"{interval.method} 95% interval [{interval.low:.3f}, {interval.high:.3f}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-sets", type=int, default=2000)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    machine = platform.processor() or platform.machine()
    print(f"# interval_coverage.py, {datetime.date.today()}, commit {commit}, {machine}")
    start = time.perf_counter()
    issue_example()
    critical_table()
    power_table(args.seed)
    coverage_table(args.n_sets, args.n_boot, args.seed)
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
