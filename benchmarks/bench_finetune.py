"""Finetuning throughput: our trainer against a plain Hugging Face regression loop, same run.

Both finetune the same randomly initialised encoder shape on ESOL's training part (ChemBench
seed 122) for the same epochs, batch size, AdamW learning rate and gradient clipping. The
baseline is the textbook loop: ``BertForSequenceClassification(num_labels=1)`` (regression),
the tokenizer padding every molecule to the fixed maximum length (128) and a shuffled
``DataLoader``. Ours (:func:`molw2s.finetuning.trainer.finetune_regressor`): molecules
tokenised once, dynamic padding per batch, plus the validation pass after every epoch
that early stopping needs (counted in our time, not in our molecules). Prints training
molecules per second of each and the ratio.

    python benchmarks/bench_finetune.py                          # CPU, quickstart-sized encoder
    python benchmarks/bench_finetune.py --size local --epochs 1
    python benchmarks/bench_finetune.py --size paper --batch-size 64 --device cuda
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from molw2s.data.config import SplitSpec
from molw2s.data.prepare import split_task
from molw2s.data.tasks import load_task
from molw2s.encoders.device import resolve_device
from molw2s.encoders.model import MolBertForPretraining, make_molbert_config
from molw2s.encoders.model_files import save_model
from molw2s.encoders.model_size import ModelSizeConfig
from molw2s.encoders.tokenizer import build_vocab, make_tokenizer
from molw2s.finetuning.config import FinetuneSettings
from molw2s.finetuning.trainer import LabelledSmiles, finetune_regressor

SIZES = {
    "quickstart": ModelSizeConfig(num_layers=4, hidden_size=128, num_heads=4, intermediate_size=512),
    "local": ModelSizeConfig(num_layers=6, hidden_size=256, num_heads=8, intermediate_size=1024),
    "paper": ModelSizeConfig(num_layers=12, hidden_size=768, num_heads=12, intermediate_size=3072),
}
MAX_LENGTH = 128


def plain_hf_loop(model_dir: Path, train: LabelledSmiles, args: argparse.Namespace, device: torch.device) -> float:
    """Seconds for ``args.epochs`` epochs of the textbook HF regression loop."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = BertForSequenceClassification.from_pretrained(str(model_dir), num_labels=1, problem_type="regression").to(
        device
    )
    enc = tok(train.smiles, padding="max_length", truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
    y = torch.tensor((train.y - train.y.mean()) / train.y.std(), dtype=torch.float32)
    data = torch.utils.data.TensorDataset(enc["input_ids"], enc["attention_mask"], y)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    model.train()
    start = time.perf_counter()
    for _ in range(args.epochs):
        for ids, att, labels in loader:
            out = model(input_ids=ids.to(device), attention_mask=att.to(device), labels=labels.to(device))
            opt.zero_grad()
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="quickstart")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared/data/moleculenet"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    task = load_task("ESOL", data_dir=args.data_dir)
    parts = split_task(task, SplitSpec(method="paper", seeds=[122]), 122, data_dir=args.data_dir)
    smiles = np.asarray(task.smiles, dtype=object)
    train, valid = (LabelledSmiles.of(list(smiles[r]), task.y[r]) for r in (parts.split.train, parts.split.valid))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        tok = make_tokenizer(build_vocab(task.smiles).token_to_id, max_length=MAX_LENGTH)
        torch.manual_seed(0)
        config = make_molbert_config(
            SIZES[args.size], vocab_size=len(tok), max_length=MAX_LENGTH, pad_token_id=tok.pad_token_id, physchem=None
        )
        save_model(MolBertForPretraining(config), tok, model_dir)
        settings = FinetuneSettings(
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=None, device=args.device
        )
        start = time.perf_counter()
        finetune_regressor(model_dir, train, valid, settings, seed=0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        ours = time.perf_counter() - start
        plain = plain_hf_loop(model_dir, train, args, device)
    n = args.epochs * len(train)
    print(
        f"ESOL train part: {len(train)} molecules, valid {len(valid)}; size {args.size}; {args.epochs} epochs; "
        f"batch {args.batch_size}; device {device}; {torch.get_num_threads()} threads"
    )
    print(f"plain HF loop (pad to {MAX_LENGTH}):         {n / plain:8.1f} molecules/s  ({plain:.1f} s)")
    print(f"molw2s finetune_regressor (+ validation): {n / ours:8.1f} molecules/s  ({ours:.1f} s)")
    print(f"ratio ours / plain: {plain / ours:.2f}x")


if __name__ == "__main__":
    main()
