"""The CPU stages of an experiment config without its family: the W2S sweep and the
evaluation of ``configs/gpu.yaml`` (by default) at the config's real shapes, on this machine.

    python benchmarks/bench_sweep.py                         # configs/gpu.yaml
    python benchmarks/bench_sweep.py configs/moleculenet.yaml --seeds 1

The sweep runs once per ``--jobs`` value (processes computing its cells; every run must
give the same cells, checked). The sweep's closed-form heads, the predictors and the
bootstrap evaluation run on the CPU whatever trains the encoders, so their cost on a GPU
machine is this cost (scaled by its cores). Transformer family members (and their
snapshots) are stood in for by Gaussian matrices of the member's hidden size, seeded by
the model name: the timings depend on the shapes, not the values, and the numbers the run
produces mean nothing. Featurisers are computed for real (and cached). Everything is
written under a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from molw2s.data.prepare import load_task_spec
from molw2s.encoders.embed import embed_task
from molw2s.experiment.cell import task_cell_splits
from molw2s.experiment.config import load_experiment_config
from molw2s.experiment.evaluate import evaluate
from molw2s.experiment.runner import controlled_representations
from molw2s.experiment.sweep import sweep_task
from molw2s.pretraining.config import load_family_config

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path, nargs="?", default=REPO / "configs" / "gpu.yaml")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "moleculenet")
    parser.add_argument("--seeds", type=int, default=None, help="use only the first N split seeds")
    parser.add_argument(
        "--jobs", type=int, nargs="+", default=[1, os.cpu_count() or 1], help="sweep once per process count"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"run_dir={tmp}/run", f"data_dir={args.data_dir}"]
        config = load_experiment_config(args.config, overrides)
        if args.seeds:
            config.splits.seeds = config.splits.seeds[: args.seeds]
        widths = {}
        if config.family is not None:
            widths = {m.name: m.model.hidden_size for m in load_family_config(config.family).members}
        names = [config.strong, *config.weak]
        weak = [*config.weak, *config.expand.controlled.names()]
        rows, seconds = [], {"featurisers": 0.0, **{f"sweep, {j} process(es)": 0.0 for j in args.jobs}}
        for spec in config.tasks:
            task = load_task_spec(spec, data_dir=config.data_dir, strict=config.strict)
            start = time.perf_counter()
            reps = {}
            for name in names:
                member = name.split("@")[0]
                if member in widths:  # a stand-in of the member's width
                    rng = np.random.default_rng(zlib.crc32(name.encode()))
                    reps[name] = rng.standard_normal((len(task.smiles), widths[member]), dtype=np.float32)
                else:
                    reps[name] = embed_task(name, task, batch_size=config.embedding.batch_size)
            reps.update(controlled_representations(config, reps[config.strong], task, progress=False))
            seconds["featurisers"] += time.perf_counter() - start
            splits = task_cell_splits(task, config, config.data_dir)
            swept = []
            for jobs in args.jobs:  # each from scratch, into its own cells directory
                settings = config.model_copy(update={"sweep_jobs": jobs})
                start = time.perf_counter()
                swept.append(
                    sweep_task(
                        task.name,
                        task.y,
                        reps,
                        splits,
                        settings,
                        Path(tmp) / f"cells-{jobs}",
                        weak=weak,
                        progress=False,
                    )
                )
                seconds[f"sweep, {jobs} process(es)"] += time.perf_counter() - start
            assert all(json.dumps(s, sort_keys=True) == json.dumps(swept[0], sort_keys=True) for s in swept)
            rows += swept[0]
            print(f"{task.name}: {len(task.smiles)} molecules, {len(splits)} seeds x {len(weak)} weak models")
        start = time.perf_counter()
        evaluate(rows, config, Path(tmp) / "report")
        seconds["evaluation"] = time.perf_counter() - start
    print(f"config {args.config.name}: {len(rows)} cells, {config.evaluation.n_boot} bootstrap resamples")
    notes = {"featurisers": "  (fingerprints and descriptors; cached after the first run)"}
    for stage, spent in seconds.items():
        print(f"  {stage:<12} {spent:7.1f} s{notes.get(stage, '')}")


if __name__ == "__main__":
    main()
