"""ECFP and MACCS featurisers: the naive per-molecule RDKit loop against the encoders in one
process and in ``--jobs`` worker processes, interleaved rounds in one run.

    python benchmarks/bench_fingerprints.py                  # Lipop (4,200 molecules), 2 jobs
    python benchmarks/bench_fingerprints.py --corpus-molecules 50000 --jobs 16

Every method must give the same matrix (checked). Best wall time of ``--repeat`` rounds.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from molw2s.data.corpora import load_corpus
from molw2s.data.tasks import load_task
from molw2s.encoders.fingerprints import ECFPEncoder, MACCSEncoder

REPO = Path(__file__).resolve().parents[1]


def naive_ecfp(smiles: list[str]) -> np.ndarray:
    """The obvious loop: parse, Morgan bits as numpy, stack."""
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return np.stack([gen.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in smiles]).astype(np.float32)


def naive_maccs(smiles: list[str]) -> np.ndarray:
    """The obvious loop: parse, MACCS keys, convert, stack."""
    from rdkit import Chem
    from rdkit.Chem import MACCSkeys

    return np.stack([np.array(MACCSkeys.GenMACCSKeys(Chem.MolFromSmiles(s))) for s in smiles]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="Lipop")
    parser.add_argument("--corpus-molecules", type=int, default=None, help="N MOSES molecules instead of a task")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    if args.corpus_molecules:
        smiles = load_corpus("moses", n=args.corpus_molecules, data_dir=args.data_dir, download=False).smiles
        source = f"{len(smiles)} MOSES molecules"
    else:
        smiles = load_task(args.task, data_dir=args.data_dir, download=False).smiles
        source = f"{args.task} ({len(smiles)} molecules)"
    print(f"{source}; {os.cpu_count()} CPU cores; best of {args.repeat} interleaved rounds")
    for name, naive, encoder in (
        ("ecfp4-2048", naive_ecfp, ECFPEncoder(2, 2048)),
        ("maccs", naive_maccs, MACCSEncoder()),
    ):
        methods = {
            "naive RDKit loop": lambda naive=naive: naive(smiles),
            "encoder, n_jobs=1": lambda e=encoder: replace(e, n_jobs=1).encode(smiles),
            f"encoder, n_jobs={args.jobs}": lambda e=encoder: replace(e, n_jobs=args.jobs).encode(smiles),
        }
        best, values = dict.fromkeys(methods, float("inf")), {}
        for _ in range(args.repeat):
            for label, fn in methods.items():
                start = time.perf_counter()
                values[label] = fn()
                best[label] = min(best[label], time.perf_counter() - start)
        reference = values["naive RDKit loop"]
        assert all(np.array_equal(v, reference) for v in values.values()), f"{name}: methods disagree"
        base = len(smiles) / best["naive RDKit loop"]
        for label, seconds in best.items():
            rate = len(smiles) / seconds
            print(f"{name:<11} {label:<20} {rate:>10,.0f} molecules/s  x{rate / base:5.2f}  ({seconds:.2f} s)")


if __name__ == "__main__":
    main()
