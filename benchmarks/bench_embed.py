"""Embedding throughput (molecules/s) with and without length-sorted batches, same run.

    python benchmarks/bench_embed.py                          # Lipop, local strong size, CPU
    python benchmarks/bench_embed.py --checkpoint RUN/strong/final --task ESOL
    python benchmarks/bench_embed.py --size paper --batch-size 256   # on a GPU

Without a checkpoint a randomly initialised model of the chosen size is used (speed does
not depend on the weights). Both orders must give the same embeddings; the largest
difference is printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from molw2s.data.tasks import load_task
from molw2s.encoders.embed import TransformerEncoder
from molw2s.encoders.model import MolBertForPretraining, make_molbert_config
from molw2s.encoders.model_files import save_model
from molw2s.encoders.tokenizer import build_vocab, make_tokenizer

REPO = Path(__file__).resolve().parents[1]
SIZES = {
    "quickstart": {"num_layers": 4, "hidden_size": 128, "num_heads": 4, "intermediate_size": 512},
    "local": {"num_layers": 6, "hidden_size": 256, "num_heads": 8, "intermediate_size": 1024},
    "paper": {"num_layers": 12, "hidden_size": 768, "num_heads": 12, "intermediate_size": 3072},
}


def random_checkpoint(directory: Path, smiles: list[str], size: str) -> Path:
    """A randomly initialised model of ``size`` with a vocabulary built from ``smiles``."""
    from molw2s.encoders.model_size import ModelSizeConfig

    tok = make_tokenizer(build_vocab(smiles).token_to_id)
    config = make_molbert_config(
        ModelSizeConfig(**SIZES[size]),
        vocab_size=len(tok),
        max_length=128,
        pad_token_id=tok.pad_token_id,
        physchem=None,
    )
    torch.manual_seed(0)
    save_model(MolBertForPretraining(config), tok, directory)
    return directory


def timed(encoder: TransformerEncoder, smiles: list[str], repeats: int) -> tuple[np.ndarray, float]:
    """Embeddings and the best wall time over ``repeats`` runs."""
    best, values = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        values = encoder.encode(smiles)
        best = min(best, time.perf_counter() - start)
    return values, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="Lipop")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a pretrained model directory")
    parser.add_argument("--size", choices=sorted(SIZES), default="local", help="random model size without --checkpoint")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pooling", choices=["cls", "mean"], default="mean")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs per order")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    smiles = load_task(args.task, data_dir=args.data_dir, download=False).smiles
    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint or random_checkpoint(Path(tmp), smiles, args.size)
        results = {}
        for sort in (False, True):
            enc = TransformerEncoder(
                path, pooling=args.pooling, batch_size=args.batch_size, sort_by_length=sort, device=args.device
            )
            results[sort] = timed(enc, smiles, args.repeats)
    lengths = np.array([len(s) for s in smiles])
    print(
        f"task {args.task}: {len(smiles)} molecules, "
        f"SMILES length mean {lengths.mean():.0f}, max {lengths.max()} characters"
    )
    print(
        f"model: {args.checkpoint or args.size}; batch {args.batch_size}; pooling {args.pooling}; "
        f"device {args.device}; torch threads {torch.get_num_threads()}"
    )
    unsorted_rate = len(smiles) / results[False][1]
    for sort in (False, True):
        rate = len(smiles) / results[sort][1]
        label = "length-sorted batches" if sort else "input order"
        print(f"{label:<24} {rate:>10,.0f} molecules/s  {rate / unsorted_rate:5.2f}x")
    print(f"max |difference| between the two: {np.abs(results[True][0] - results[False][0]).max():.2e}")


if __name__ == "__main__":
    main()
