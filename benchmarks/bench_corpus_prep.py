"""Corpus preparation for pretraining, one process against ``--jobs`` worker processes, same run.

Times ``prepare_pretraining_data`` (the real function ``molw2s pretrain`` calls) on a MOSES
draw with an empty cache, split by stage (parsing the SMILES, counting the vocabulary's
tokens over the corpus and one randomised SMILES of each, tokenising, descriptors when
``--physchem``), once with ``descriptor_jobs: 1`` and once with ``--jobs``; checks that
both give the same vocabulary, ids and targets.

    python benchmarks/bench_corpus_prep.py --n 100000 --jobs 2       # the 2-core dev machine
    python benchmarks/bench_corpus_prep.py --n 500000 --jobs 16      # configs/family_gpu.yaml's corpus
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import numpy as np

from molw2s.pretraining import corpus
from molw2s.pretraining.config import PretrainingDataConfig

REPO = Path(__file__).resolve().parents[1]
#: the stages of corpus preparation, by the function that does each
STAGES = {
    "load_corpus_spec": "parse",
    "vocabulary_counts": "vocabulary",
    "encode_corpus": "tokenise",
    "cached_descriptors": "descriptors",
}


def timed(seconds: dict[str, float], stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` adding its wall time to ``seconds[stage]``."""

    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[stage] += time.perf_counter() - start

    return run


def prepare(config: PretrainingDataConfig, data_dir: Path) -> tuple[corpus.PretrainingData, dict[str, float]]:
    """Prepare with an empty cache; return the data and the seconds per stage."""
    seconds: dict[str, float] = defaultdict(float)
    originals = {name: getattr(corpus, name) for name in STAGES}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["MOLW2S_DATA_DIR"] = cache
        for name, stage in STAGES.items():
            setattr(corpus, name, timed(seconds, stage, originals[name]))
        try:
            start = time.perf_counter()
            data = corpus.prepare_pretraining_data(config, data_dir=data_dir, progress=False)
            seconds["total"] = time.perf_counter() - start
        finally:
            for name, fn in originals.items():
                setattr(corpus, name, fn)
    return data, dict(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="MOSES molecules drawn")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes of the parallel run")
    parser.add_argument("--physchem", action="store_true", help="also compute the descriptor targets")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    base = {"corpus": {"name": "moses", "n": args.n}, "val_fraction": 0.01, "augment": True}
    results = {}
    for jobs in (1, args.jobs):
        config = PretrainingDataConfig.model_validate({**base, "physchem": args.physchem, "descriptor_jobs": jobs})
        results[jobs] = prepare(config, args.data_dir)
    (serial, t1), (parallel, tn) = results[1], results[args.jobs]
    assert serial.tokenizer.get_vocab() == parallel.tokenizer.get_vocab(), "vocabularies differ"
    assert serial.train.ids == parallel.train.ids and serial.val.ids == parallel.val.ids, "ids differ"
    if args.physchem:
        assert serial.train.physchem is not None and parallel.train.physchem is not None
        np.testing.assert_array_equal(serial.train.physchem, parallel.train.physchem)
    print(f"MOSES {args.n:,} molecules ({len(serial.train.ids):,} training), augment on, physchem {args.physchem}")
    print(f"{'stage':<12} {'1 process':>10} {f'{args.jobs} processes':>13} {'ratio':>7}")
    for stage in [*dict.fromkeys(STAGES.values()), "total"]:
        if stage in t1:
            print(f"{stage:<12} {t1[stage]:>9.1f}s {tn[stage]:>12.1f}s {t1[stage] / tn[stage]:>6.2f}x")
    print("same vocabulary, ids" + (" and descriptor targets" if args.physchem else "") + " in both runs")


if __name__ == "__main__":
    main()
