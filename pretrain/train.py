"""Pretrain a model family: the entry point for single-process and torchrun/accelerate runs.

    python pretrain/train.py configs/family_quickstart.yaml
    torchrun --nproc_per_node=8 pretrain/train.py configs/family_paper.yaml --run-dir runs/paper

It calls the same library code as ``molw2s pretrain`` (see pretrain/README.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from molw2s.errors import MolW2SError
from molw2s.pretraining.config import load_family_config
from molw2s.pretraining.distributed import init_distributed, shutdown_distributed
from molw2s.pretraining.family import pretrain_family
from molw2s.pretraining.report import print_results


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, train, print the held-out table on rank 0."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path, help="family YAML (configs/family_*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.batch_size=512")
    parser.add_argument("--member", action="append", help="train only this member (repeatable)")
    parser.add_argument("--run-dir", type=Path, help="checkpoints and models (default: the molw2s cache)")
    parser.add_argument("--data-dir", type=Path, help="directory holding corpus files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        family = load_family_config(args.config, args.overrides)
        result = pretrain_family(
            family, args.run_dir, members=args.member, data_dir=args.data_dir, progress=not args.no_progress
        )
    except MolW2SError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if init_distributed(family.train.device).is_main:
        print_results(result)
    shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
