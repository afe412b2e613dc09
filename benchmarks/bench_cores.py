"""Are the CPU's cores independent? One single-threaded float32 matmul loop alone, then one
per core at once: the combined rate over the single one says how much parallel processes
(``parallel_members``, batch workers) can gain on this machine for compute-bound work.

    python benchmarks/bench_cores.py
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time


def matmul_rate(size: int, repeats: int) -> float:
    """GFLOP/s of ``repeats`` single-threaded ``size x size`` float32 matrix products."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(5):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=400)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with mp.get_context("spawn").Pool(args.processes) as pool:
        alone = pool.apply(matmul_rate, (args.size, args.repeats))
        together = pool.starmap(matmul_rate, [(args.size, args.repeats)] * args.processes)
    print(f"one process alone: {alone:.1f} GFLOP/s")
    print(f"{args.processes} at once: {' + '.join(f'{r:.1f}' for r in together)} = {sum(together):.1f} GFLOP/s")
    print(f"parallel gain: {sum(together) / alone:.2f}x of the ideal {args.processes}x")


if __name__ == "__main__":
    main()
