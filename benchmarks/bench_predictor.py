"""Factored predictor (molw2s.theory.predictor) against the naive dense form.

1. n_hat in {1000, 4000}, d = 768: factored vs dense M / M_F / PredGap_hat in the same
   run; the speed ratio and the relative agreement.
2. n_hat = 100,000, d = 1024 (the dense form would need 80 GB per n_hat x n_hat matrix):
   factored time and peak memory (tracemalloc peak of the predictor call, on top of the
   two input matrices, and the process's max RSS).

    python benchmarks/bench_predictor.py --threads 1          # both parts, 1 BLAS thread
    python benchmarks/bench_predictor.py --sizes 1000 --large-n 0

The factored timings are the best of ``--repeat`` runs (the dense form runs once).
On a shared, oversubscribed machine multithreaded OpenBLAS eigensolvers can slow down
by 10-40x; ``--threads 1`` gives the stable figure.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from molw2s.theory.dense import dense_predictor
from molw2s.theory.predictor import predict_w2s
from molw2s.theory.synthetic import make_family


def representations(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weak (angle 0.6) and strong representations of the synthetic family, 32 principal
    directions plus a (d - 32)-dim isotropic tail, and the labels."""
    fam = make_family(n, r=32, tail_dim=d - 32, angles=[0.6], seed=seed)
    return fam.weak(0), fam.strong(), fam.y


def compare(n: int, d: int, repeat: int, beta: float = 0.05) -> None:
    """Factored and dense on the same inputs; print times, ratio and agreement."""
    H_w, H_s, y = representations(n, d)
    t_fac = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fac = predict_w2s(H_w, H_s, beta_w=beta, beta_s=beta, y=y)
        t_fac = min(t_fac, time.perf_counter() - t0)
    t0 = time.perf_counter()
    M, M_F, gap = dense_predictor(H_w, H_s, beta_w=beta, beta_s=beta, k_w=fac.k_w, k_s=fac.k_s, y=y)
    t_dense = time.perf_counter() - t0
    rel = max(abs(fac.M - M) / M, abs(fac.M_F - M_F) / M_F, abs(fac.predgap_hat - gap) / gap)
    print(
        f"n_hat={n:>6} d={d}  k_w={fac.k_w} k_s={fac.k_s}  factored {t_fac:7.2f} s  dense {t_dense:7.2f} s  "
        f"ratio {t_dense / t_fac:6.1f}x  M={fac.M:.6f}  max rel. diff (M, M_F, PredGap_hat) {rel:.1e}",
        flush=True,
    )


def large(n: int, d: int, beta: float = 0.05) -> None:
    """Factored predictor at a size the dense form cannot hold; time and peak memory."""
    H_w, H_s, y = representations(n, d, seed=1)
    inputs_gb = (H_w.nbytes + H_s.nbytes) / 1e9
    tracemalloc.start()
    t0 = time.perf_counter()
    res = predict_w2s(H_w, H_s, beta_w=beta, beta_s=beta, y=y)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    max_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    print(
        f"n_hat={n} d={d}  k_w={res.k_w} k_s={res.k_s}  factored {elapsed:.1f} s  M={res.M:.4f}  "
        f"inputs {inputs_gb:.2f} GB, extra peak during the call {peak / 1e9:.2f} GB, "
        f"process max RSS {max_rss_gb:.2f} GB "
        f"(dense would need {n * n * 8 / 1e9:.0f} GB per n_hat x n_hat matrix)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 4000])
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--large-n", type=int, default=100_000, help="0 skips the large case")
    parser.add_argument("--large-d", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: the library's)")
    args = parser.parse_args()
    with threadpool_limits(limits=args.threads, user_api="blas"):
        threads = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
        print(f"# {platform.machine()}, numpy {np.__version__}, BLAS threads {threads}")
        for n in args.sizes:
            compare(n, args.d, args.repeat)
        if args.large_n:
            large(args.large_n, args.large_d)


if __name__ == "__main__":
    main()
