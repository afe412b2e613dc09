"""``molw2s run``: pretrain the family (or reuse it), embed, sweep, evaluate.

Every stage is cached (checkpoints with completion markers, embeddings by content hash,
one JSON per W2S cell), so an interrupted run resumes where it stopped when rerun.

With a family that has several pretraining seeds (``seeds``), the embedding and the sweep
run once per replicate (:meth:`ResolvedModels.replicates`): the member names point at that
replicate's checkpoints, every cell row carries ``replicate`` (the seed) and the cells of
a replicate other than ``train.seed``'s are kept under ``cells/seed=<seed>/``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from molw2s.data.tasks import Task
from molw2s.encoders.controlled import add_noise, mix, random_subspace
from molw2s.encoders.coverage import coverage_lines
from molw2s.encoders.embed import embed_task, embed_tasks
from molw2s.encoders.spec import ModelRef, Pooling
from molw2s.experiment.cell import CellSplit, task_cell_splits
from molw2s.experiment.config import ExperimentConfig
from molw2s.experiment.evaluate import evaluate
from molw2s.experiment.model_info import describe_models
from molw2s.experiment.models import ResolvedModels, resolve_models
from molw2s.experiment.students import make_students
from molw2s.experiment.summary import log_summary
from molw2s.experiment.sweep import sweep_task
from molw2s.io import write_json_atomic, write_text_atomic
from molw2s.tracking import LOG_DIR, Tracking, open_logger

log = logging.getLogger(__name__)

#: the stages of a run, timed in ``<run_dir>/timings.json`` (cached work takes ~0 s)
STAGES = ("pretraining", "embedding", "sweep", "evaluation")
TIMINGS_FILE = "timings.json"


def resolve_encoders(config: ExperimentConfig) -> ResolvedModels:
    """The strong and weak models of ``config`` (strong first) as references, see
    :func:`molw2s.experiment.models.resolve_models`."""
    return resolve_models([config.strong, *config.weak], config)


@dataclass(frozen=True)
class ModelPlan:
    """How one named model embeds a task: a model reference, a pooling and a layer."""

    ref: ModelRef
    pooling: Pooling
    layer: int


def model_plans(config: ExperimentConfig, refs: dict[str, ModelRef]) -> dict[str, ModelPlan]:
    """The strong and weak models, then every transformer weak model again at each layer
    and pooling of ``expand`` (``NAME|layer=L``, ``NAME|pooling=P``; the configured
    embedding's own layer and pooling are not repeated)."""
    emb, expand = config.embedding, config.expand
    plans = {name: ModelPlan(ref, emb.pooling, emb.layer) for name, ref in refs.items()}
    for name in config.weak:
        if not refs[name].is_transformer:
            continue
        for layer in expand.layers:
            if layer != emb.layer:
                plans[f"{name}|layer={layer}"] = ModelPlan(refs[name], emb.pooling, layer)
        for pooling in expand.poolings:
            if pooling != emb.pooling:
                plans[f"{name}|pooling={pooling}"] = ModelPlan(refs[name], pooling, emb.layer)
    return plans


def check_model_settings(config: ExperimentConfig, models: ResolvedModels, plans: dict[str, ModelPlan]) -> None:
    """Layers to embed and blocks to freeze within each transformer's layers, checked when
    the run starts (before pretraining), naming the key."""
    for name, plan in plans.items():
        key = "expand.layers" if "|layer=" in name else "embedding.layer"
        models.check_layer(name.split("|")[0], plan.layer, key)
    if config.w2s.student == "finetune":
        models.check_freeze(config.strong, config.w2s.finetune.freeze, "w2s.finetune.freeze")


def embed_plans(
    plans: dict[str, ModelPlan], tasks: list[Task], config: ExperimentConfig, *, progress: bool
) -> dict[str, dict[str, np.ndarray]]:
    """Representations per task name and model name. Model by model: one encoder (one
    loaded checkpoint) embeds every task, and is released before the next is loaded."""
    emb = config.embedding
    out: dict[str, dict[str, np.ndarray]] = {task.name: {} for task in tasks}
    for name, plan in plans.items():
        reps = embed_tasks(
            plan.ref,
            tasks,
            pooling=plan.pooling,
            layer=plan.layer,
            batch_size=emb.batch_size,
            precision=emb.precision,
            progress=progress,
        )
        for task_name, values in reps.items():
            out[task_name][name] = values
    return out


def controlled_representations(
    config: ExperimentConfig, strong: np.ndarray, task: Task, *, progress: bool
) -> dict[str, np.ndarray]:
    """The controlled weak models of ``config.expand.controlled`` for one task."""
    family = config.expand.controlled
    names = iter(family.names())
    out = {next(names): random_subspace(strong, k, family.seed) for k in family.subspace_dims}
    out.update({next(names): add_noise(strong, level, family.seed) for level in family.noise_levels})
    if family.mix_with is not None and family.mix_weights:
        emb = config.embedding
        other = embed_task(family.mix_with, task, batch_size=emb.batch_size, precision=emb.precision, progress=progress)
        out.update({next(names): mix(strong, other, w) for w in family.mix_weights})
    return out


def pretrain_if_needed(
    config: ExperimentConfig, models: ResolvedModels, *, progress: bool, tracking: Tracking = "auto"
) -> None:
    """Train the family members the experiment uses that are not finished yet (every replicate)."""
    if models.family is None:
        return
    from molw2s.pretraining.family import pretrain_family

    result = pretrain_family(
        models.family,
        models.models_dir,
        members=list(models.members),
        data_dir=config.corpus_dir,
        progress=progress,
        tracking=tracking,
    )
    for row in result.rows:
        log.info("%s (%s): %s", row.name, row.status, row.metrics)


def sweep_replicate(
    config: ExperimentConfig,
    models: ResolvedModels,
    tasks: list[Task],
    task_splits: dict[str, list[CellSplit]],
    weak: list[str],
    seconds: dict[str, float],
    *,
    progress: bool,
) -> list[dict[str, Any]]:
    """Embed every task with the models of one replicate and run its cells (cached under
    :meth:`ResolvedModels.replicate_dir` of ``<run_dir>/cells``); the rows carry
    ``replicate`` when the models come from a replicate. Adds to ``seconds``."""
    run_dir = config.resolved_run_dir()
    students = make_students(config, models.refs[config.strong], models.replicate_dir(run_dir / "students"))
    start = time.perf_counter()
    representations = embed_plans(model_plans(config, models.refs), tasks, config, progress=progress)
    seconds["embedding"] += time.perf_counter() - start
    rows: list[dict[str, Any]] = []
    for task in tasks:
        start = time.perf_counter()
        reps = representations.pop(task.name)
        reps.update(controlled_representations(config, reps[config.strong], task, progress=progress))
        seconds["embedding"] += time.perf_counter() - start
        start = time.perf_counter()
        rows += sweep_task(
            task.name,
            task.y,
            reps,
            task_splits[task.name],
            config,
            models.replicate_dir(run_dir / "cells"),
            weak=weak,
            student=students(task),
            progress=progress,
        )
        seconds["sweep"] += time.perf_counter() - start
    if models.seed is not None:
        for row in rows:
            row["replicate"] = models.seed
    return rows


def run_experiment(config: ExperimentConfig, *, progress: bool = True, tracking: Tracking = "auto") -> dict[str, Any]:
    """Run the whole experiment and write ``<run_dir>/report``; return results.json's content.
    The wall time of each stage goes to ``<run_dir>/timings.json`` (not into results.json,
    which stays identical between reruns).

    ``tracking`` (see :mod:`molw2s.tracking`) receives the pretraining curves (under each
    member's directory) and the sweep's summary (under ``<run_dir>/tensorboard``).
    """
    from molw2s.data.prepare import load_task_spec

    run_dir = config.resolved_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    models = resolve_encoders(config)
    plans = model_plans(config, models.refs)
    check_model_settings(config, models, plans)
    weak = [name for name in plans if name != config.strong] + config.expand.controlled.names()
    # tasks and their splits before any heavy work: a missing file or a too small split fails at once
    tasks = [load_task_spec(task_spec, data_dir=config.data_dir, strict=config.strict) for task_spec in config.tasks]
    task_splits = {task.name: task_cell_splits(task, config, config.data_dir) for task in tasks}
    seconds = dict.fromkeys(STAGES, 0.0)
    start = time.perf_counter()
    pretrain_if_needed(config, models, progress=progress, tracking=tracking)
    seconds["pretraining"] = time.perf_counter() - start
    data_report = []
    checkpoints = models.checkpoints()  # every replicate shares the family's vocabulary
    for task in tasks:
        data_report.append(task.report())
        data_report += coverage_lines(task.name, task.smiles, checkpoints)
        dropped = sum(s.n_dropped for s in task_splits[task.name])
        if dropped:
            data_report.append(f"{task.name}: {dropped} split rows refer to excluded molecules and were dropped")
    rows: list[dict[str, Any]] = []
    for replicate in models.replicates():
        rows += sweep_replicate(config, replicate, tasks, task_splits, weak, seconds, progress=progress)
    write_text_atomic(run_dir / "data_report.txt", "\n\n".join(data_report) + "\n")
    start = time.perf_counter()
    results = evaluate(rows, config, run_dir / "report", describe_models(weak, models, strong=config.strong))
    seconds["evaluation"] = time.perf_counter() - start
    write_json_atomic(run_dir / TIMINGS_FILE, {"seconds": seconds, "total": sum(seconds.values())})
    tracker = open_logger(tracking, run_dir / LOG_DIR)
    try:
        log_summary(results, tracker)
    finally:
        tracker.close()
    return results
