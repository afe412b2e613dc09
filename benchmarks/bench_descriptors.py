"""Throughput of compute_descriptors on nci5k against the naive per-molecule RDKit loop.

Run: python benchmarks/bench_descriptors.py [--n 4999] [--jobs 2] [--repeat 3]
Prints molecules/s for (a) the naive loop Descriptors.CalcMolDescriptors(mol) per SMILES,
(b) compute_descriptors(n_jobs=1), (c) compute_descriptors(n_jobs=--jobs), and the ratios.
The three are run in interleaved rounds and the best wall time of each is kept, so that
load from other processes on a shared machine biases none of them in particular.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def naive(smiles: list[str]) -> np.ndarray:
    """The obvious alternative: one CalcMolDescriptors call per molecule, stacked."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import Descriptors

    rows = []
    with rdBase.BlockLogs():
        for s in smiles:
            mol = Chem.MolFromSmiles(s)
            if mol is not None:
                rows.append(list(Descriptors.CalcMolDescriptors(mol).values()))
    return np.asarray(rows, dtype=np.float64)


def main() -> None:
    from molw2s.chem.descriptors import compute_descriptors
    from molw2s.data.registry import nci5k_path

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=4999)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    smiles = [line.split()[0] for line in nci5k_path().read_text().splitlines()][: args.n]

    methods = {
        "naive CalcMolDescriptors loop": lambda: naive(smiles),
        "compute_descriptors n_jobs=1": lambda: compute_descriptors(smiles),
        f"compute_descriptors n_jobs={args.jobs}": lambda: compute_descriptors(smiles, n_jobs=args.jobs),
    }
    best = {label: float("inf") for label in methods}
    cpu = {label: float("inf") for label in methods}
    for _ in range(args.repeat):
        for label, fn in methods.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            best[label] = min(best[label], time.perf_counter() - start)
            cpu[label] = min(cpu[label], time.process_time() - start_cpu)
    results = {label: len(smiles) / seconds for label, seconds in best.items()}
    base = results["naive CalcMolDescriptors loop"]
    print(f"{len(smiles)} SMILES (nci5k), {os.cpu_count()} CPU cores, best of {args.repeat} interleaved rounds")
    print(f"{'method':40s} {'wall mol/s':>10s}  {'vs naive':>8s}  {'CPU ms/mol (this process)':>26s}")
    for label, rate in results.items():
        print(f"{label:40s} {rate:10.0f}  x{rate / base:7.2f}  {1000 * cpu[label] / len(smiles):26.2f}")


if __name__ == "__main__":
    main()
