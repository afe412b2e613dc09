"""The k rules side by side: auto (the default), flat_tail, full_rank and tau, on the
synthetic family of benchmarks/synthetic_validation.py and on one task of a finished run.

Per rule it prints the ranges of k_w and k_s (and, for auto, which rule each
representation resolved to), the range of M and Spearman(M, Err_w2s): on the synthetic
family across its 8 weak models (M should rise with the angle); on the real task across
the weak models' seed means, and over all cells. Every cell is computed once; the rules
are its primary rule and sensitivity rules (``molw2s.experiment.cell.run_cell``).

    python benchmarks/k_rules.py [--run runs/quickstart] [--task nci_logp] [--no-synthetic]

The real part loads ``RUN/config.yaml`` from the folder the run was started in (default:
two levels above RUN) and reads the cached embeddings; it writes nothing to the run.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from synthetic_validation import N_HAT, N_TEST, N_WEAK, SETTINGS, R

from molw2s.experiment.cell import CellSplit, rule_label, run_cell, task_cell_splits
from molw2s.experiment.config import CellSettings, PredictorSettings, load_experiment_config
from molw2s.theory.predictor import PredictorConfig
from molw2s.theory.synthetic import make_family

RULES = [
    PredictorConfig(rule="auto"),
    PredictorConfig(rule="flat_tail"),
    PredictorConfig(rule="full_rank"),
    PredictorConfig(rule="tau", tau=0.9),
    PredictorConfig(rule="tau", tau=0.5),
]


def _settings(base: CellSettings, rules: Sequence[PredictorConfig]) -> CellSettings:
    return base.model_copy(update={"predictor": PredictorSettings(primary=rules[0], sensitivity=list(rules[1:]))})


def _ranges(entries: list[dict[str, Any]]) -> str:
    k_w = [e["k_w"] for e in entries]
    k_s = [e["k_s"] for e in entries]
    used = Counter(f"{e['rule_w']}/{e['rule_s']}" for e in entries)
    return (
        f"k_w {min(k_w):>4}..{max(k_w):<4} k_s {min(k_s):>4}..{max(k_s):<4} "
        f"used (w/s) {', '.join(f'{u} x{n}' for u, n in used.items())}"
    )


def synthetic(seed: int = 0) -> None:
    """Each synthetic_validation setting: one line per rule."""
    rules = [*RULES[:4], PredictorConfig(rule="fixed", k_w=R, k_s=R)]
    settings = _settings(CellSettings(w2s={"head": {"scale": "none"}}), rules)
    for tail_dim, tail_var, noise in SETTINGS:
        fam = make_family(N_WEAK + N_HAT + N_TEST, r=R, tail_dim=tail_dim, tail_var=tail_var, noise=noise, seed=seed)
        idx = np.arange(fam.n)
        split = CellSplit(0, idx[:N_WEAK], idx[N_WEAK : N_WEAK + N_HAT], idx[N_WEAK + N_HAT :])
        H_s = fam.strong()
        rows = [run_cell(fam.weak(i), H_s, fam.y, split, settings) for i in range(len(fam.angles))]
        err = [r["err_w2s"] for r in rows]
        for rule in rules:
            entries = [r["sensitivity"][rule_label(rule)] for r in rows]
            M = [e["M"] for e in entries]
            print(
                f"tail_dim={tail_dim:>4} tail_var={tail_var:>5} noise={noise}  {rule_label(rule):<22} "
                f"{_ranges(entries)}  M {M[0]:.2f} -> {M[-1]:.2f}  "
                f"rho(M, Err_w2s)={spearmanr(M, err).statistic:+.2f}",
                flush=True,
            )


def real(run: Path, task_name: str | None, root: Path | None) -> None:
    """Every cell of one task of a finished run, recomputed under each rule."""
    from molw2s.data.prepare import load_task_spec
    from molw2s.experiment.runner import embed_plans, model_plans, resolve_encoders

    run = run.resolve()
    os.chdir(root or run.parent.parent)  # relative paths of the config are the run's
    config = load_experiment_config(run / "config.yaml", [f"run_dir={run}"])
    spec = next(t for t in config.tasks if task_name in (None, t.name))
    task = load_task_spec(spec, data_dir=config.data_dir, strict=config.strict)
    plans = model_plans(config, resolve_encoders(config).refs)
    reps = embed_plans(plans, [task], config, progress=False)[task.name]
    settings = _settings(config, RULES)
    rows = [
        (name, run_cell(reps[name], reps[config.strong], task.y, split, settings))
        for split in task_cell_splits(task, config, config.data_dir)
        for name in plans
        if name != config.strong
    ]
    weak = sorted({name for name, _ in rows})
    n_hat = rows[0][1]["n_hat"]
    print(f"{run.name} / {task.name}: strong {config.strong}, {len(weak)} weak, {len(rows)} cells, n_hat {n_hat}")
    err = {w: np.mean([r["err_w2s"] for n, r in rows if n == w]) for w in weak}
    for rule in RULES:
        label = rule_label(rule)
        entries = [r["sensitivity"][label] for _, r in rows]
        M = {w: np.mean([r["sensitivity"][label]["M"] for n, r in rows if n == w]) for w in weak}
        rho_models = spearmanr([M[w] for w in weak], [err[w] for w in weak]).statistic
        rho_cells = spearmanr([e["M"] for e in entries], [r["err_w2s"] for _, r in rows]).statistic
        print(
            f"{label:<16} {_ranges(entries)}  M {min(M.values()):.2f}..{max(M.values()):.2f}  "
            f"rho(M, Err_w2s) models {rho_models:+.2f} cells {rho_cells:+.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/quickstart"), help="a finished run directory")
    parser.add_argument("--task", default=None, help="a task of the run (default: its first)")
    parser.add_argument("--root", type=Path, default=None, help="the folder the run was started in")
    parser.add_argument("--no-synthetic", action="store_true")
    args = parser.parse_args()
    if not args.no_synthetic:
        synthetic()
    real(args.run, args.task, args.root)


if __name__ == "__main__":
    main()
