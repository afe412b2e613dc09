"""Linear heads on a Lipop-sized problem: our closed-form ridge vs sklearn's Ridge, and
the paper's SGD (batch 1024, lr 1e-3, weight decay 0.1, 2000 epochs), all fitting
the same objective (beta = 0.05); timings (ridge and sklearn: best of 3), their ratio,
and how far each solver's test predictions are from ridge's (RMS difference relative
to the spread of ridge's predictions).

Lipop: 4200 molecules, an 80/10/10 split gives 3360 training rows; d = 768 as for a
BERT-base embedding (here the synthetic family: 32 principal directions + a tail).

    python benchmarks/bench_heads.py --threads 1 [--epochs 2000] [--n 3360] [--d 768]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_limits

from molw2s.theory.synthetic import make_family
from molw2s.w2s.features import Scale, fit_scaling
from molw2s.w2s.heads import RidgeHead, SGDHead

T = TypeVar("T")


def timed(fn: Callable[[], T], repeat: int = 1) -> tuple[T, float]:
    """(result, best wall seconds over ``repeat`` calls) of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3360)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--beta", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=None, help="BLAS and torch threads (default: the libraries')")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Fit and time the three solvers at both feature scalings."""
    fam = make_family(args.n + 420, r=32, tail_dim=args.d - 32, angles=[0.0], seed=0)
    threads = torch.get_num_threads()
    print(f"# {platform.machine()}, torch {torch.__version__} ({threads} threads), n={args.n}, d={args.d}")
    SGDHead(epochs=1).fit(fam.strong()[:64], fam.y[:64])  # warm-up: torch's first-call overhead is not the solver's
    for scale in ("none", "trace"):
        bench_scale(fam.strong(), fam.y, args.n, scale, args.beta, args.epochs)


def bench_scale(H: np.ndarray, y: np.ndarray, n: int, scale: Scale, beta: float, epochs: int) -> None:
    """Ridge, sklearn and SGD on the first ``n`` rows, evaluated on the rest."""
    H_train, y_train, H_test, y_test = H[:n], y[:n], H[n:], y[n:]
    factor = fit_scaling(H_train, scale).factor  # sklearn gets the same scaled features
    ridge, t_ridge = timed(lambda: RidgeHead(beta, scale=scale).fit(H_train, y_train), repeat=3)
    sk, t_sk = timed(lambda: Ridge(alpha=n * beta).fit(H_train / factor, y_train), repeat=3)
    sgd, t_sgd = timed(lambda: SGDHead(weight_decay=2 * beta, epochs=epochs, scale=scale).fit(H_train, y_train))
    preds = {"ridge": ridge.predict(H_test), "sklearn": sk.predict(H_test / factor), "sgd": sgd.predict(H_test)}
    ref = preds["ridge"]
    spread = np.sqrt(np.mean((ref - ref.mean()) ** 2))
    rel = {name: float(np.sqrt(np.mean((p - ref) ** 2)) / spread) for name, p in preds.items()}
    mse = {name: float(np.mean((y_test - p) ** 2)) for name, p in preds.items()}
    print(f"scale={scale:<5} ridge   {t_ridge:7.3f} s  test MSE {mse['ridge']:.4f}")
    print(
        f"scale={scale:<5} sklearn {t_sk:7.3f} s  test MSE {mse['sklearn']:.4f}  "
        f"time sklearn / ours {t_sk / t_ridge:.2f}; rel. RMS diff to ridge {rel['sklearn']:.1e}"
    )
    print(
        f"scale={scale:<5} sgd     {t_sgd:7.3f} s  test MSE {mse['sgd']:.4f}  "
        f"({epochs} epochs, lr 1e-3, batch 1024); rel. RMS diff to ridge {rel['sgd']:.1e}",
        flush=True,
    )


if __name__ == "__main__":
    main()
