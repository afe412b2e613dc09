"""The pretraining batch pipeline alone, no model: how fast one process builds batches, what
each stage costs, and how many batch workers a GPU would need.

    python benchmarks/bench_batches.py                       # batch 256, MOSES, augmentation + PhysChem
    python benchmarks/bench_batches.py --packing 128 --no-physchem

It times the trainer's own item (``StepBatches[step]``: the step's rows, a randomised
SMILES per molecule through RDKit, tokenising, padding, BERT masking, PhysChem targets,
micro-batches and packing when asked) over ``--steps`` steps in this process, then each
stage on its own over the same rows. From the per-process rate it derives the batch
workers one GPU needs to keep a BERT-base member fed at a target model FLOPs utilisation:
useful FLOPs per molecule as in ``bench_pretrain.py`` (6 N l + 12 L H l^2 at the corpus's
lengths), against the dense bf16 peak of an H100/H200 (989 TFLOP/s). Those worker counts
are arithmetic on this CPU's per-core rate, not a GPU measurement.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from molw2s.chem.randomize import randomized_smiles
from molw2s.data.config import CorpusSpec
from molw2s.encoders.padding import pad_batch
from molw2s.encoders.tokenizer import SPECIAL_TOKENS, encode_smiles
from molw2s.pretraining.config import PretrainingDataConfig
from molw2s.pretraining.corpus import prepare_pretraining_data
from molw2s.pretraining.loader import BatchOrder, StepBatches, StepLayout, step_seed
from molw2s.pretraining.masking import mask_tokens

REPO = Path(__file__).resolve().parents[1]
#: BERT-base encoder weights outside the embeddings, layers and width (bench_pretrain's "paper")
PAPER_N, PAPER_LAYERS, PAPER_HIDDEN = 12 * (4 * 768 * 768 + 2 * 768 * 3072), 12, 768
H100_BF16_PEAK = 989e12


def stage_times(batches: StepBatches, steps: range) -> dict[str, float]:
    """Seconds spent in each stage of ``make_batch`` over ``steps`` (same rows and seeds)."""
    data, tok = batches.data, batches.data.tokenizer
    out = dict.fromkeys(["randomise (RDKit)", "tokenise", "pad", "mask", "PhysChem rows"], 0.0)
    for step in steps:
        seed, rows = step_seed(batches.seed, step, 0), batches.order.rows_for(step)
        start = time.perf_counter()
        rng = np.random.default_rng(seed)
        texts = [randomized_smiles(data.train.smiles[i], rng) for i in rows] if data.config.augment else None
        t1 = time.perf_counter()
        ids = (
            encode_smiles(tok, texts, max_length=data.config.max_length).ids
            if texts is not None
            else [data.train.ids[i] for i in rows]
        )
        t2 = time.perf_counter()
        input_ids, _ = pad_batch(ids, tok.pad_token_id, multiple_of=batches.layout.pad_multiple)
        t3 = time.perf_counter()
        mask_tokens(
            input_ids,
            mask_token_id=tok.mask_token_id,
            n_special=len(SPECIAL_TOKENS),
            vocab_size=len(tok),
            generator=torch.Generator().manual_seed(seed),
        )
        t4 = time.perf_counter()
        if data.train.physchem is not None:
            torch.from_numpy(data.train.physchem[rows])
        t5 = time.perf_counter()
        for key, seconds in zip(out, (t1 - start, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            out[key] += seconds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-molecules", type=int, default=50000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="timed steps")
    parser.add_argument("--packing", type=int, default=None, help="pack micro-batches into rows of N")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--physchem", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one batch worker = one single-threaded process
    cfg = PretrainingDataConfig(
        corpus=CorpusSpec(name="moses", n=args.n_molecules), augment=args.augment, physchem=args.physchem, max_val=64
    )
    data = prepare_pretraining_data(cfg, data_dir=args.data_dir, progress=False)
    order = BatchOrder(data.train.lengths, args.batch_size, seed=0, bucket_batches=50, rank=0, world_size=1)
    layout = StepLayout(pad_multiple=8, packing=args.packing)
    batches = StepBatches(data, order, seed=0, layout=layout)
    steps = range(1, args.steps + 1)
    batches[0]  # warm-up (imports, first RDKit calls)
    start = time.perf_counter()
    molecules = tokens = 0
    for step in steps:
        for part in batches[step]:
            molecules += part.n_molecules
            tokens += part.n_tokens
    seconds = time.perf_counter() - start
    rate = molecules / seconds
    pipeline = ("augmentation" if args.augment else "canonical ids") + (" + PhysChem" if args.physchem else "")
    print(f"{len(data.train.smiles)} MOSES molecules; batch {args.batch_size}; {pipeline}; packing {args.packing}")
    print(f"one process: {rate:,.0f} molecules/s, {tokens / seconds:,.0f} real tokens/s ({seconds:.2f} s)")
    stages = stage_times(batches, steps)
    total = sum(stages.values())
    print(f"stages timed apart over the same rows ({total:.2f} s in all):")
    for name, spent in stages.items():
        print(f"  {name:<18} {spent / molecules * 1e6:7.1f} us per molecule  {spent / total:6.1%}")
    lengths = data.train.lengths.astype(np.float64)
    flops = 6 * PAPER_N * lengths.mean() + 12 * PAPER_LAYERS * PAPER_HIDDEN * (lengths**2).mean()
    print(f"BERT-base training FLOPs per molecule at these lengths (mean {lengths.mean():.1f} ids): {flops:.3g}")
    for mfu in (0.3, 0.4):
        need = mfu * H100_BF16_PEAK / flops
        print(f"  {mfu:.0%} MFU on one H100 needs {need:,.0f} molecules/s = {int(np.ceil(need / rate))} such workers")


if __name__ == "__main__":
    main()
