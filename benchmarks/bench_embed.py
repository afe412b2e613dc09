"""Embedding throughput (molecules/s): input order vs length-sorted, float32 vs bf16, and
the host's share of the work, in one run.

    python benchmarks/bench_embed.py                          # Lipop, local strong size, CPU
    python benchmarks/bench_embed.py --checkpoint RUN/strong/final --task ESOL
    python benchmarks/bench_embed.py --size quickstart --bf16  # adds a bf16-autocast row
    python benchmarks/bench_embed.py --size paper --batch-size 512 --corpus-molecules 100000 --bf16  # a GPU

Without a checkpoint a randomly initialised model of the chosen size is used (speed does
not depend on the weights). One encoder per row loads the model once (the time is printed
apart) and is then timed over whole ``encode`` calls, as ``molw2s run`` uses it. The
sorted and unsorted rows must agree (largest difference printed); the bf16 row is compared
with float32 (relative error and the largest 1 - cosine similarity). The host part times what
the CPU does per molecule whatever the device: tokenising, and padding with the library's
vectorised ``pad_batch`` against a row-by-row copy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from molw2s.data.corpora import load_corpus
from molw2s.data.tasks import load_task
from molw2s.encoders.model import MolBertForPretraining, make_molbert_config
from molw2s.encoders.model_files import load_encoder, save_model
from molw2s.encoders.padding import pad_batch
from molw2s.encoders.spec import Precision
from molw2s.encoders.tokenizer import build_vocab, encode_smiles, make_tokenizer
from molw2s.encoders.transformer import TransformerEncoder

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


def row_by_row_padding(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The obvious padding loop (what ``pad_batch`` replaced): one tensor copy per row."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        attention[i, : len(seq)] = 1
    return ids, attention


def host_costs(path: Path, smiles: list[str], batch_size: int) -> dict[str, float]:
    """Microseconds per molecule of tokenising and of padding (vectorised vs row by row)."""
    _, tokenizer = load_encoder(path)
    start = time.perf_counter()
    ids = encode_smiles(tokenizer, smiles, max_length=128).ids
    out = {"tokenise": (time.perf_counter() - start) / len(smiles) * 1e6}
    batches = [ids[i : i + batch_size] for i in range(0, len(ids), batch_size)]
    for name, pad in (("pad, row by row", row_by_row_padding), ("pad, vectorised", pad_batch)):
        start = time.perf_counter()
        for batch in batches:
            pad(batch, tokenizer.pad_token_id)
        out[name] = (time.perf_counter() - start) / len(smiles) * 1e6
    return out


def timed(encoder: TransformerEncoder, smiles: list[str], repeats: int) -> tuple[np.ndarray, float, float]:
    """Embeddings, the first call's model loading time and the best wall time over ``repeats``
    calls with the model loaded."""
    start = time.perf_counter()
    encoder.encode(smiles[:1])  # loads the model, hashes nothing (identity is not asked for)
    load = time.perf_counter() - start
    best, values = float("inf"), np.zeros(0)
    for _ in range(repeats):
        start = time.perf_counter()
        values = encoder.encode(smiles)
        best = min(best, time.perf_counter() - start)
    return values, load, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="Lipop")
    parser.add_argument("--corpus-molecules", type=int, default=None, help="embed N MOSES molecules instead")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a pretrained model directory")
    parser.add_argument("--size", choices=sorted(SIZES), default="local", help="random model size without --checkpoint")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pooling", choices=["cls", "mean"], default="mean")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs per row")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--bf16", action="store_true", help="add a length-sorted row under bf16 autocast")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.corpus_molecules:
        source = f"{args.corpus_molecules} MOSES molecules"
        smiles = load_corpus("moses", n=args.corpus_molecules, data_dir=args.data_dir, download=False).smiles
    else:
        source = f"task {args.task}"
        smiles = load_task(args.task, data_dir=args.data_dir, download=False).smiles
    rows: list[tuple[str, bool, Precision]] = [
        ("input order, float32", False, "float32"),
        ("length-sorted, float32", True, "float32"),
    ]
    if args.bf16:
        rows.append(("length-sorted, bf16 autocast", True, "bfloat16"))
    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint or random_checkpoint(Path(tmp), smiles, args.size)
        results = {}
        for label, sort, precision in rows:
            enc = TransformerEncoder(
                path,
                pooling=args.pooling,
                batch_size=args.batch_size,
                sort_by_length=sort,
                device=args.device,
                precision=precision,
            )
            results[label] = timed(enc, smiles, args.repeats)
        host = host_costs(path, smiles, args.batch_size)
    lengths = np.array([len(s) for s in smiles])
    print(f"{source}: {len(smiles)} molecules, SMILES length mean {lengths.mean():.0f}, max {lengths.max()} characters")
    print(
        f"model: {args.checkpoint or args.size}; batch {args.batch_size}; pooling {args.pooling}; "
        f"device {args.device}; torch threads {torch.get_num_threads()}"
    )
    base = len(smiles) / results[rows[0][0]][2]
    for label, _, _ in rows:
        _, load, seconds = results[label]
        rate = len(smiles) / seconds
        print(f"{label:<30} {rate:>10,.0f} molecules/s  {rate / base:5.2f}x   (model load {load:.2f} s)")
    sorted_, unsorted = results[rows[1][0]][0], results[rows[0][0]][0]
    print(f"max |difference| sorted vs input order: {np.abs(sorted_ - unsorted).max():.2e}")
    if args.bf16:
        half = results[rows[2][0]][0]
        rel = np.linalg.norm(half - sorted_) / np.linalg.norm(sorted_)
        cos = (half * sorted_).sum(1) / (np.linalg.norm(half, axis=1) * np.linalg.norm(sorted_, axis=1))
        print(f"bf16 vs float32: relative error {rel:.2e}, largest 1 - cosine similarity {1 - cos.min():.1e}")
    print("host work per molecule (CPU, whatever the device):")
    for name, micro in host.items():
        print(f"  {name:<18} {micro:7.2f} us  (alone caps the rate at {1e6 / micro:>12,.0f} molecules/s)")


if __name__ == "__main__":
    main()
