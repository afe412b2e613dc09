"""``molw2s run``: pretrain the family (or reuse it), embed, sweep, evaluate.

Every stage is cached (checkpoints with completion markers, embeddings by content hash,
one JSON per W2S cell), so an interrupted run resumes where it stopped when rerun.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from molw2s.data.tasks import Task
from molw2s.encoders.controlled import add_noise, mix, random_subspace
from molw2s.encoders.coverage import coverage_lines
from molw2s.encoders.embed import Pooling, embed_task, embed_tasks
from molw2s.errors import ConfigError
from molw2s.experiment.cell import task_cell_splits
from molw2s.experiment.config import ExperimentConfig
from molw2s.experiment.evaluate import evaluate
from molw2s.experiment.summary import log_summary
from molw2s.experiment.sweep import FinetunedStudent, sweep_task
from molw2s.io import safe_filename, write_json_atomic, write_text_atomic
from molw2s.tracking import LOG_DIR, Tracking, open_logger

log = logging.getLogger(__name__)

#: the stages of a run, timed in ``<run_dir>/timings.json`` (cached work takes ~0 s)
STAGES = ("pretraining", "embedding", "sweep", "evaluation")
TIMINGS_FILE = "timings.json"


def family_run_dir(config: ExperimentConfig) -> Path:
    """Where the family's checkpoints live: ``family_run_dir`` or ``<run_dir>/models``."""
    return config.family_run_dir or config.resolved_run_dir() / "models"


def resolve_encoders(config: ExperimentConfig) -> dict[str, str]:
    """Encoder spec per model name of ``config`` (strong first), see :func:`resolve_model_specs`."""
    return resolve_model_specs([config.strong, *config.weak], config.family, family_run_dir(config))


def resolve_model_specs(names: list[str], family: Path | None, models_dir: Path) -> dict[str, str]:
    """Encoder spec per model name: members of ``family`` (checkpoints under ``models_dir``)
    become ``bert:<checkpoint dir>``, other names must be featuriser specs; checked before
    any heavy work starts."""
    from molw2s.encoders.embed import parse_encoder_spec

    members: dict[str, Path] = {}
    if family is not None:
        from molw2s.pretraining.config import load_family_config
        from molw2s.pretraining.family import family_models

        members = family_models(load_family_config(family), models_dir)
    specs = {}
    for name in names:
        if name in members:
            specs[name] = f"bert:{members[name]}"
            continue
        try:
            parse_encoder_spec(name)
        except ConfigError as exc:
            known = f"; family members: {', '.join(members)}" if members else "; no family is configured"
            raise ConfigError(f"model {name!r} is neither a family member nor a featuriser ({exc}){known}") from None
        specs[name] = name
    return specs


@dataclass(frozen=True)
class ModelPlan:
    """How one named model embeds a task: an encoder spec, a pooling and a layer."""

    spec: str
    pooling: Pooling
    layer: int


def model_plans(config: ExperimentConfig, specs: dict[str, str]) -> dict[str, ModelPlan]:
    """The strong and weak models, then every transformer weak model again at each layer
    and pooling of ``expand`` (``NAME|layer=L``, ``NAME|pooling=P``; the configured
    embedding's own layer and pooling are not repeated)."""
    emb, expand = config.embedding, config.expand
    plans = {name: ModelPlan(spec, emb.pooling, emb.layer) for name, spec in specs.items()}
    for name in config.weak:
        if not specs[name].startswith("bert:"):
            continue
        for layer in expand.layers:
            if layer != emb.layer:
                plans[f"{name}|layer={layer}"] = ModelPlan(specs[name], emb.pooling, layer)
        for pooling in expand.poolings:
            if pooling != emb.pooling:
                plans[f"{name}|pooling={pooling}"] = ModelPlan(specs[name], pooling, emb.layer)
    return plans


def embed_plans(
    plans: dict[str, ModelPlan], tasks: list[Task], config: ExperimentConfig, *, progress: bool
) -> dict[str, dict[str, np.ndarray]]:
    """Representations per task name and model name. Model by model: one encoder (one
    loaded checkpoint) embeds every task, and is released before the next is loaded."""
    emb = config.embedding
    out: dict[str, dict[str, np.ndarray]] = {task.name: {} for task in tasks}
    for name, plan in plans.items():
        reps = embed_tasks(
            plan.spec,
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


def pretrain_if_needed(config: ExperimentConfig, *, progress: bool, tracking: Tracking = "auto") -> None:
    """Train the family members the experiment uses that are not finished yet."""
    if config.family is None:
        return
    from molw2s.pretraining.config import load_family_config
    from molw2s.pretraining.family import pretrain_family

    family = load_family_config(config.family)
    used = {m.name for m in family.members for n in [config.strong, *config.weak] if n.split("@")[0] == m.name}
    result = pretrain_family(
        family,
        family_run_dir(config),
        members=sorted(used),
        data_dir=config.corpus_dir,
        progress=progress,
        tracking=tracking,
    )
    for row in result.rows:
        log.info("%s (%s): %s", row.name, row.status, row.metrics)


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
    specs = resolve_encoders(config)
    if config.w2s.student == "finetune" and not specs[config.strong].startswith("bert:"):
        raise ConfigError(
            f"w2s.student=finetune finetunes the strong encoder, but {config.strong!r} is a featuriser, "
            "not a transformer checkpoint"
        )
    plans = model_plans(config, specs)
    weak = [name for name in plans if name != config.strong] + config.expand.controlled.names()
    # tasks and their splits before any heavy work: a missing file or a too small split fails at once
    tasks = [load_task_spec(task_spec, data_dir=config.data_dir, strict=config.strict) for task_spec in config.tasks]
    task_splits = {task.name: task_cell_splits(task, config, config.data_dir) for task in tasks}
    seconds = dict.fromkeys(STAGES, 0.0)
    start = time.perf_counter()
    pretrain_if_needed(config, progress=progress, tracking=tracking)
    seconds["pretraining"] = time.perf_counter() - start
    rows: list[dict[str, Any]] = []
    data_report = []
    start = time.perf_counter()
    representations = embed_plans(plans, tasks, config, progress=progress)
    seconds["embedding"] += time.perf_counter() - start
    checkpoints = {name: Path(plan.spec[5:]) for name, plan in plans.items() if plan.spec.startswith("bert:")}
    for task in tasks:
        data_report.append(task.report())
        data_report += coverage_lines(task.name, task.smiles, {n: p for n, p in checkpoints.items() if "|" not in n})
        start = time.perf_counter()
        reps = representations.pop(task.name)
        reps.update(controlled_representations(config, reps[config.strong], task, progress=progress))
        seconds["embedding"] += time.perf_counter() - start
        splits = task_splits[task.name]
        dropped = sum(s.n_dropped for s in splits)
        if dropped:
            data_report.append(f"{task.name}: {dropped} split rows refer to excluded molecules and were dropped")
        student = (
            FinetunedStudent(
                Path(specs[config.strong][5:]), task.smiles, run_dir / "students" / safe_filename(task.name)
            )
            if config.w2s.student == "finetune"
            else None
        )
        start = time.perf_counter()
        rows += sweep_task(
            task.name, task.y, reps, splits, config, run_dir / "cells", weak=weak, student=student, progress=progress
        )
        seconds["sweep"] += time.perf_counter() - start
    write_text_atomic(run_dir / "data_report.txt", "\n\n".join(data_report) + "\n")
    start = time.perf_counter()
    results = evaluate(rows, config, run_dir / "report")
    seconds["evaluation"] = time.perf_counter() - start
    write_json_atomic(run_dir / TIMINGS_FILE, {"seconds": seconds, "total": sum(seconds.values())})
    tracker = open_logger(tracking, run_dir / LOG_DIR)
    try:
        log_summary(results, tracker)
    finally:
        tracker.close()
    return results
