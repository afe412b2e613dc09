"""Pretraining throughput: the trainer's whole loop against a plain HF ``BertForMaskedLM``
loop, same run.

Both train the same encoder shape on the same MOSES molecules with the same batch size,
AdamW and gradient clipping. The baseline is the textbook loop: random batches padded to
the fixed maximum length (128), ``DataCollatorForLanguageModeling`` masking, MLM logits
over every position, canonical SMILES only. Ours is the real trainer (``MemberTrainer``:
its batch stream and ``train_step``) with what a family config turns on by default:
SMILES enumeration (a fresh randomised SMILES per molecule and step, through RDKit) and
PhysChem targets (``--no-augment`` / ``--no-physchem`` switch them off), length-bucketed
batches, dynamic padding, MLM logits at masked positions only; once with batches built in
the training process, once by ``--data-workers`` processes. "data wait" is the share of
the loop spent waiting for the next batch: on a GPU, the time it sits idle for want of
data. A row without bucketing separates the padding effect. Throughput counts real
(non-pad) tokens.

    python benchmarks/bench_pretrain.py                        # CPU, the local strong model
    python benchmarks/bench_pretrain.py --size paper --batch-size 256 --steps 50  # on a GPU

On CUDA it also reports model FLOPs utilisation (MFU): useful FLOPs per step,
sum_i (6 N l_i + 12 L H l_i^2) over the real lengths l_i of the molecules in the batches
trained (their randomised SMILES, not the canonical ones; N: encoder parameters outside the
embeddings), divided by time and the card's dense bf16 peak (by its name: H100 SXM, PCIe
and NVL differ). With ``--no-physchem`` it matches configs/family_gpu.yaml. Time many more
steps than the workers prefetch (4 per worker) or the data wait hides in the prefetched
batches: benchmarks/gpu_check.sh times 300.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from molw2s.data.config import CorpusSpec
from molw2s.encoders.device import available_cpus, peak_bf16_flops, resolve_device
from molw2s.encoders.model_size import ModelSizeConfig
from molw2s.pretraining.config import MemberConfig, PretrainingDataConfig, TrainConfig
from molw2s.pretraining.corpus import PretrainingData, prepare_pretraining_data
from molw2s.pretraining.loader import Batch
from molw2s.pretraining.trainer import MemberTrainer

SIZES = {
    "quickstart": ModelSizeConfig(num_layers=4, hidden_size=128, num_heads=4, intermediate_size=512),
    "local": ModelSizeConfig(num_layers=6, hidden_size=256, num_heads=8, intermediate_size=1024),
    "paper": ModelSizeConfig(num_layers=12, hidden_size=768, num_heads=12, intermediate_size=3072),
}
REPO = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (timings are wall clock)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_flops(size: ModelSizeConfig, lengths: np.ndarray) -> float:
    """Useful training FLOPs of one batch of real lengths (6N per token + attention)."""
    h, layers = size.hidden_size, size.num_layers
    n = layers * (4 * h * h + 2 * h * size.intermediate_size)  # QKVO + feed-forward weights
    lengths = lengths.astype(np.float64)
    return float(6 * n * lengths.sum() + 12 * layers * h * (lengths**2).sum())


def real_lengths(parts: list[Batch]) -> np.ndarray:
    """Tokens of each molecule of a step's (micro-)batches as trained: padded rows count
    their mask, packed rows each (row, segment)."""
    out = []
    for part in parts:
        if part.starts is None:
            out.append(part.attention_mask.sum(1).numpy())
        else:
            segments = part.attention_mask
            rows = torch.arange(len(segments))[:, None] * (int(segments.max()) + 1)
            counts = torch.bincount((rows + segments)[segments > 0])
            out.append(counts[counts > 0].numpy())
    return np.concatenate(out)


def bench_ours(
    data: PretrainingData,
    size: ModelSizeConfig,
    args: argparse.Namespace,
    bucket_batches: int,
    workers: int,
    *,
    packing: int | None = None,
    compile_model: bool = False,
    bf16_cpu: bool = False,
) -> dict:
    """Real tokens/s of the molw2s trainer's loop (bucketing on when bucket_batches > 1,
    packed rows of ``packing`` positions, ``torch.compile``), batches built by ``workers``
    processes, and the time spent waiting for them (compilation falls in the warm-up steps)."""
    train = TrainConfig(
        batch_size=args.batch_size,
        bucket_batches=bucket_batches,
        device=args.device,
        num_threads=args.threads,
        warmup_steps=0,
        seed=args.seed,
        data_workers=workers,
        packing=packing,
        compile=compile_model,
        compile_mode=args.compile_mode,
        bf16_cpu=bf16_cpu,
    )
    member = MemberConfig(name="bench", model=size, steps=args.warmup + args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = MemberTrainer(member, train, data, tmp, config_hash="bench", progress=False)
        trainer.wrap_model()  # compiled when asked, as in training
        trainer.model.train()
        stream = trainer.batches()  # the trainer's own batch pipeline (workers, augmentation, masking)
        for _ in range(args.warmup):
            trainer.train_step(next(stream))
        timed = timed_steps(trainer, stream, args.steps)
    flops = model_flops(size, timed["lengths"])
    return {"tokens": timed["tokens"], "seconds": timed["seconds"], "flops": flops, "wait": timed["wait"]}


def timed_steps(trainer: MemberTrainer, stream: Iterator[list[Batch]], steps: int) -> dict:
    """``steps`` training steps of ``trainer`` from ``stream``, timed from an idle device:
    real tokens, seconds, the share spent waiting for batches, the lengths trained."""
    device = trainer.dist.device
    sync(device)
    tokens0, lengths, waited = trainer.counters["tokens"], [], 0.0
    start = time.perf_counter()
    for _ in range(steps):
        asked = time.perf_counter()
        batch = next(stream)
        waited += time.perf_counter() - asked
        lengths.append(real_lengths(batch))
        trainer.train_step(batch)
    sync(device)
    elapsed = time.perf_counter() - start
    return {
        "tokens": trainer.counters["tokens"] - tokens0,
        "seconds": elapsed,
        "wait": waited / elapsed,
        "lengths": np.concatenate(lengths),
    }


def bench_plain_hf(data: PretrainingData, size: ModelSizeConfig, args: argparse.Namespace) -> dict:
    """Real tokens/s of a plain BertForMaskedLM loop with fixed-length padding."""
    from transformers import BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling

    device = resolve_device(args.device)
    tok = data.tokenizer
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=size.hidden_size,
        num_hidden_layers=size.num_layers,
        num_attention_heads=size.num_heads,
        intermediate_size=size.intermediate_size,
        max_position_embeddings=data.config.max_length,
        type_vocab_size=1,
        pad_token_id=tok.pad_token_id,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(args.seed)
    model = BertForMaskedLM(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=data.config.mask_prob, return_tensors="pt")
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    order = np.random.default_rng(args.seed).permutation(len(data.train.smiles))
    real, lengths = 0, []
    start = None
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            sync(device)
            start = time.perf_counter()
        rows = order[step * args.batch_size : (step + 1) * args.batch_size]
        enc = tok(
            [data.train.smiles[i] for i in rows],
            padding="max_length",
            truncation=True,
            max_length=data.config.max_length,
            return_special_tokens_mask=True,
        )
        batch = collator([{k: enc[k][i] for k in enc} for i in range(len(rows))])
        if step >= args.warmup:
            real += int(batch["attention_mask"].sum())
            lengths.append(batch["attention_mask"].sum(1).numpy())
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(device)
    return {"tokens": real, "seconds": time.perf_counter() - start, "flops": model_flops(size, np.concatenate(lengths))}


def peak_flops(device: torch.device, override_tflops: float | None) -> float | None:
    """The GPU's dense bf16 peak (None on CPU or an unknown GPU without --peak-tflops)."""
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    return peak_bf16_flops(torch.cuda.get_device_name(device))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="local")
    parser.add_argument("--n-molecules", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per loop")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak for MFU if the GPU is not known")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-workers", type=int, default=None, help="batch-building processes of the last row (default: cores - 1)"
    )
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True, help="SMILES enumeration")
    parser.add_argument("--physchem", action=argparse.BooleanOptionalAction, default=True, help="PhysChem targets")
    parser.add_argument("--descriptor-jobs", type=int, default=None, help="processes for the descriptor targets")
    parser.add_argument("--packing", type=int, default=None, help="add rows with random batches packed into rows of N")
    parser.add_argument("--compile", action="store_true", help="add a row with torch.compile (packed if --packing)")
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode (train.compile_mode)")
    parser.add_argument("--bf16-cpu", action="store_true", help="add a row with bf16 autocast on the CPU")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size = SIZES[args.size]
    data_cfg = PretrainingDataConfig(
        corpus=CorpusSpec(name="moses", n=args.n_molecules),
        augment=args.augment,
        physchem=args.physchem,
        max_val=64,
        descriptor_jobs=args.descriptor_jobs,
    )
    data = prepare_pretraining_data(data_cfg, data_dir=args.data_dir, progress=False)
    if (args.warmup + args.steps) * args.batch_size > len(data.train.smiles):
        parser.error("--n-molecules too small for (warmup + steps) * batch-size")
    device = resolve_device(args.device)
    lengths = data.train.lengths
    cpu = f"cpu x {torch.get_num_threads()} threads"
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else cpu}")
    print(
        f"model: {args.size} {size.model_dump()}; batch {args.batch_size}; {args.steps} timed steps after {args.warmup}"
    )
    print(
        f"data: {len(lengths)} MOSES molecules, ids per molecule mean {lengths.mean():.1f}, "
        f"max {lengths.max()} (padded to {data_cfg.max_length})"
    )

    workers = args.data_workers if args.data_workers is not None else max(1, available_cpus() - 1)
    pipeline = ("augmentation" if args.augment else "canonical SMILES") + (" + PhysChem" if args.physchem else "")
    print(f"molw2s pipeline: {pipeline}")
    rows = [
        ("plain HF BertForMaskedLM, fixed padding to 128", bench_plain_hf(data, size, args)),
        ("molw2s, no bucketing, in-process batches", bench_ours(data, size, args, bucket_batches=1, workers=0)),
        ("molw2s, length buckets, in-process batches", bench_ours(data, size, args, bucket_batches=50, workers=0)),
        (f"molw2s, length buckets, {workers} batch workers", bench_ours(data, size, args, 50, workers=workers)),
    ]
    if args.bf16_cpu:
        bf16 = bench_ours(data, size, args, 50, workers=0, bf16_cpu=True)
        rows.append(("molw2s, length buckets, in-process, bf16 autocast on the CPU", bf16))
    if args.packing:
        packed = bench_ours(data, size, args, 1, workers=workers, packing=args.packing)
        rows.append((f"molw2s, random batches packed in rows of {args.packing}", packed))
    if args.compile:
        label = f"packed in rows of {args.packing}" if args.packing else "length buckets"
        compiled = bench_ours(
            data, size, args, 1 if args.packing else 50, workers, packing=args.packing, compile_model=True
        )
        rows.append((f"molw2s, {label}, torch.compile {args.compile_mode}", compiled))
    peak = peak_flops(device, args.peak_tflops)
    base = rows[0][1]["tokens"] / rows[0][1]["seconds"]
    print(f"\n{'loop':<62} {'real tokens/s':>14} {'ratio':>7} {'MFU':>7} {'data wait':>10}")
    for name, r in rows:
        rate = r["tokens"] / r["seconds"]
        mfu = f"{r['flops'] / r['seconds'] / peak:.1%}" if peak else "n/a"
        wait = f"{r['wait']:.0%}" if "wait" in r else "-"
        print(f"{name:<62} {rate:>14,.0f} {rate / base:>6.2f}x {mfu:>7} {wait:>10}")


if __name__ == "__main__":
    main()
