"""``molw2s multicap``: multi-capability weak-to-strong generalisation (theory.md section 8)
on frozen representations or with the strong encoder finetuned, over split seeds, with a
report. Finetuned students' runs are cached under ``<run_dir>/students``.

Each (seed, experiment) is one checked JSON under ``<run_dir>/cells`` named by a content
hash of its inputs (capabilities' molecules, labels, splits, representations) and settings,
so a rerun skips finished work and a killed run resumes. The report (``<run_dir>/report``,
:mod:`molw2s.experiment.multicap_report`): ``results.json``, one CSV of per-seed records and
one of seed-interval summaries per experiment, ``report.md`` / ``report.html`` and figures.
Errors are test-set MSE in each capability's units; every difference is formed within a
seed, then summarised over seeds (mean, t-interval: :mod:`molw2s.multicap.summary`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from threadpoolctl import threadpool_limits

from molw2s.data.prepare import load_task_spec
from molw2s.data.tasks import Task
from molw2s.encoders.embed import embed_tasks
from molw2s.encoders.refs import model_transformer
from molw2s.encoders.spec import ModelRef
from molw2s.errors import ConfigError, DataError
from molw2s.experiment.cell import CellSplit, task_cell_splits
from molw2s.experiment.config import MulticapConfig
from molw2s.experiment.models import resolve_models
from molw2s.experiment.multicap_report import write_multicap_report
from molw2s.io import CachedResult, content_hash, write_text_atomic
from molw2s.multicap import seed_experiments as ex
from molw2s.multicap.capability import Capability, WeakSupervision, weak_supervision
from molw2s.multicap.finetune_student import FinetuneSetup

CELL_VERSION = "multicap-cell-v2"  # v2: P_w of the gap selection with the weak head's trace factor (on D_w)
#: student settings that only the ``finetune`` student reads
FINETUNE_FIELDS = {"finetune", "valid_frac"}


def run_multicap(config: MulticapConfig, *, progress: bool = False) -> dict[str, Any]:
    """Split (a too small capability fails before any embedding), embed, run the configured
    experiments on every seed (cached), write the report; return results.json's content."""
    run_dir = config.resolved_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    models = resolve_models([config.strong, *config.weak], config)
    for name in models.refs:
        models.check_layer(name, config.embedding.layer, "embedding.layer")
    if config.student.kind == "finetune":
        models.check_freeze(config.strong, config.student.finetune.freeze, "student.finetune.freeze")
    refs = models.refs
    finetune = _finetune_setup(config, refs[config.strong], run_dir, progress)
    tasks = [load_task_spec(spec, data_dir=config.data_dir, strict=config.strict) for spec in config.tasks]
    splits = {t.name: _splits(t, config) for t in tasks}
    emb = config.embedding
    reps = {
        name: {
            task: values.astype(np.float64)
            for task, values in embed_tasks(
                ref,
                tasks,
                pooling=emb.pooling,
                layer=emb.layer,
                batch_size=emb.batch_size,
                precision=emb.precision,
                progress=progress,
            ).items()
        }
        for name, ref in refs.items()
    }
    records: dict[str, list[dict[str, Any]]] = {name: [] for name in config.experiments}
    # Many small dense problems (heads, PCA, students): threaded BLAS only adds synchronisation,
    # e.g. a 160 x 256 SVD takes 1.5 s instead of 5 ms with 2 threads on a busy 2-core machine.
    with threadpool_limits(limits=1, user_api="blas"):
        for k, seed in enumerate(config.splits.seeds):
            caps = {
                weak: [
                    _capability(t, reps[weak][t.name], reps[config.strong][t.name], splits[t.name][k]) for t in tasks
                ]
                for weak in config.weak
            }
            for experiment in config.experiments:
                cell = _cell(experiment, seed, caps, config, run_dir, finetune)
                records[experiment] += [{"seed": seed, **r} for r in cell["records"]]
    return write_multicap_report(records, config, run_dir / "report")


def _finetune_setup(config: MulticapConfig, strong: ModelRef, run_dir: Path, progress: bool) -> FinetuneSetup | None:
    """The checkpoint and cache of a ``finetune`` student (None for the frozen students)."""
    if config.student.kind != "finetune":
        return None
    return FinetuneSetup(model_transformer(strong, "student.kind=finetune"), run_dir / "students", progress)


def _splits(task: Task, config: MulticapConfig) -> list[CellSplit]:
    """The task's split per seed, checked against the minimum sizes (errors name the task)."""
    label = f"capability {task.name} ({len(task.smiles)} molecules)"
    try:
        return task_cell_splits(task, config, config.data_dir, label=label)
    except ConfigError as exc:
        raise DataError(f"{label} is too small for the split: {exc}") from None


def _capability(task: Task, H_w: np.ndarray, H_s: np.ndarray, split: CellSplit) -> Capability:
    return Capability(task.name, H_w, H_s, task.y, split.weak, split.strong, split.test, list(task.smiles))


def _digest(caps: dict[str, list[Capability]]) -> str:
    """sha256 over every capability's molecules, labels, splits and representations."""
    h = hashlib.sha256()
    for weak, group in caps.items():
        h.update(weak.encode())
        for cap in group:
            h.update("\n".join([cap.name, *(cap.smiles or [])]).encode())
            for array in (cap.y, cap.weak, cap.strong, cap.test, cap.H_w, cap.H_s):
                h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _cell(
    experiment: str,
    seed: int,
    caps: dict[str, list[Capability]],
    config: MulticapConfig,
    run_dir: Path,
    finetune: FinetuneSetup | None,
) -> dict[str, Any]:
    """One experiment on one seed, read back when done before."""
    settings = config.model_dump(
        mode="json",
        include={
            "weak",
            "strong",
            "weak_head",
            "strong_head",
            "student",
            "selection",
            "bootstrap",
            "diversity",
            "predictor",
        },
    )
    if config.student.kind != "finetune":  # the finetuning settings key a cell only when that student runs
        settings["student"] = {k: v for k, v in settings["student"].items() if k not in FINETUNE_FIELDS}
    key = content_hash(CELL_VERSION, experiment, seed, _digest(caps), settings)
    cache = CachedResult(run_dir / "cells" / f"{experiment}.seed{seed}.{key}.json", key)
    cached = cache.load()
    if cached is not None:
        return cached
    main = caps[config.weak[0]]
    folds = config.selection.reward.folds

    def supervise(group: list[Capability]) -> dict[str, WeakSupervision]:
        return {c.name: weak_supervision(c, config.weak_head, folds=folds, seed=seed) for c in group}

    if experiment == "independence":
        records = ex.independence(main, supervise(main), config.student, finetune)
    elif experiment == "quality":
        by_weak = {weak: supervise(group) for weak, group in caps.items()}
        records = []
        for i, cap in enumerate(main):
            sups = {weak: by_weak[weak][cap.name] for weak in caps}
            records += ex.quality_and_diversity(
                cap, sups, config.student, config.diversity.fraction, seed + i, finetune
            )
    elif experiment == "bootstrapping":
        records = ex.bootstrapping(main, supervise(main), config.student, config.bootstrap, finetune)
    else:
        records = ex.selection(
            main,
            supervise(main),
            config.student,
            config.selection,
            weak_head=config.weak_head,
            strong_head=config.strong_head,
            predictor=config.predictor,
            seed=seed,
            finetune=finetune,
        )
    return cache.store({"cell": key, "experiment": experiment, "seed": seed, "records": records})
