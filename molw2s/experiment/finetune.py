"""``molw2s finetune``: a checkpoint finetuned end to end on tasks over split seeds, beside
frozen-feature baselines (ridge and RBF SVR on pooled features, RDKit descriptors).

Each (task, seed) is one JSON file under ``<run_dir>/cells`` named by a content hash of
what produced it, so a rerun skips finished work; the finetuning state of the seed in
progress is saved every epoch under ``<run_dir>/state`` and resumed. The report
(``<run_dir>/report``, :mod:`molw2s.experiment.finetune_report`) has ``results.json``,
``results.csv`` (one row per task, seed and method), ``summary.csv`` / ``report.md`` /
``report.html`` (mean +- std over seeds) and a predicted-vs-measured figure per task. Every
error is in the task's original units.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from molw2s.data.prepare import TaskSplit, load_task_spec, split_task_seeds
from molw2s.data.tasks import Task
from molw2s.encoders.embed import compute_task_embedding, parse_encoder_spec
from molw2s.encoders.transformer import TransformerEncoder, TransformerFiles
from molw2s.errors import DataError
from molw2s.experiment.config import FinetuneConfig
from molw2s.experiment.finetune_report import write_finetune_report
from molw2s.experiment.models import resolve_models
from molw2s.finetuning.baselines import fit_baseline
from molw2s.finetuning.model import check_freeze
from molw2s.finetuning.trainer import LabelledSmiles, finetune_regressor
from molw2s.io import CachedResult, content_hash, safe_filename, write_text_atomic
from molw2s.tracking import LOG_DIR, Tracking
from molw2s.w2s.metrics import regression_metrics

CELL_VERSION = "finetune-cell-v1"
CHECKPOINT = "checkpoint"  # in baselines.features: the finetuned checkpoint's own pooled features


def resolve_checkpoint(config: FinetuneConfig) -> Path:
    """The trained model directory ``config.model`` names (see :func:`resolve_transformer`)."""
    return resolve_transformer(config).path


def resolve_transformer(config: FinetuneConfig) -> TransformerFiles:
    """The files of the trained model ``config.model`` names (``bert:DIR``, a directory,
    ``hf:DIR_OR_NAME``, or a member of ``config.family`` under
    :meth:`~molw2s.experiment.config.RunSettings.resolved_family_run_dir`)."""
    return resolve_models([config.model], config).trained_transformer(config.model, "molw2s finetune")


def finetune_seed_of(training_seed: int, split_seed: int) -> int:
    """The finetuning seed of one split seed (distinct per split, fixed by both seeds)."""
    return int(np.random.SeedSequence([training_seed, split_seed]).generate_state(1)[0])


def run_finetune(config: FinetuneConfig, *, progress: bool = True, tracking: Tracking = "auto") -> dict[str, Any]:
    """Finetune and fit the baselines on every task and seed; write the report; return
    results.json's content. The finetuning curves go to ``tracking`` (:mod:`molw2s.tracking`)
    under ``<run_dir>/tensorboard/<task>.seed<seed>``."""
    run_dir = config.resolved_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    checkpoint = resolve_transformer(config)
    if config.end_to_end:
        check_freeze(config.training.freeze, checkpoint.n_layers(), "training.freeze")
    cells = []
    for spec in config.tasks:
        task = load_task_spec(spec, data_dir=config.data_dir, strict=config.strict)
        for parts in split_task_seeds(task, config.splits, data_dir=config.data_dir):
            cells.append(_cell(task, parts, checkpoint, config, run_dir, progress=progress, tracking=tracking))
    return write_finetune_report(cells, config, checkpoint.path, run_dir / "report")


def _cell(
    task: Task,
    parts: TaskSplit,
    checkpoint: TransformerFiles,
    config: FinetuneConfig,
    run_dir: Path,
    *,
    progress: bool,
    tracking: Tracking,
) -> dict[str, Any]:
    """One task and split seed: finetuned model and baselines, read back when done before."""
    split = parts.split
    where = f"{task.name}, seed {parts.seed}"
    for part, rows in (("training", split.train), ("validation", split.valid), ("test", split.test)):
        if len(rows) == 0:
            raise DataError(f"{where}: the split has no {part} part; finetuning needs train, validation and test")
    key = content_hash(
        CELL_VERSION,
        checkpoint.weights_digest(),
        task.name,
        task.smiles,
        task.y,
        split.as_dict(),
        config.training.model_dump(),
        config.end_to_end,
        config.baselines.model_dump(),
    )
    path = run_dir / "cells" / f"{safe_filename(task.name)}.seed{parts.seed}.{key}.json"
    cache = CachedResult(path, key)
    cached = cache.load()
    if cached is not None:
        return cached
    smiles = np.asarray(task.smiles, dtype=object)
    train, valid = (LabelledSmiles.of(list(smiles[rows]), task.y[rows]) for rows in (split.train, split.valid))
    y_test = task.y[split.test]
    results: list[dict[str, Any]] = []
    predictions: dict[str, list[float]] = {}
    name = f"{safe_filename(task.name)}.seed{parts.seed}"
    state_dir = run_dir / "state" / name
    if config.end_to_end:
        fitted = finetune_regressor(
            checkpoint,
            train,
            valid,
            config.training,
            seed=finetune_seed_of(config.training.seed, parts.seed),
            state_dir=state_dir,
            progress=progress,
            tracking=tracking,
            log_dir=run_dir / LOG_DIR / name,
        )
        pred = fitted.predict(list(smiles[split.test]))
        extra = {"best_epoch": fitted.best_epoch, "stopped_early": fitted.stopped_early, "history": fitted.history}
        results.append(_result_row("finetune", CHECKPOINT, y_test, pred, extra))
        predictions["finetune"] = pred.tolist()
    for features in config.baselines.features:
        X = _features(features, checkpoint, task, config, progress=progress)
        for model in config.baselines.models:
            base = fit_baseline(model, X[split.train], train.y, X[split.valid], valid.y, config.baselines)
            pred = base.predict(X[split.test])
            method = f"{model}({features})"
            extra = {base.param: base.value, "valid_rmse": base.valid_rmse}
            results.append(_result_row(method, features, y_test, pred, extra))
            predictions[method] = pred.tolist()
    cell = {
        "cell": key,
        "task": task.name,
        "seed": parts.seed,
        "checkpoint": str(checkpoint.path),
        "sizes": {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)},
        "n_split_rows_dropped": parts.n_dropped,
        "results": results,
        "test_rows": split.test.tolist(),
        "y_test": y_test.tolist(),
        "predictions": predictions,
    }
    cache.store(cell)
    shutil.rmtree(state_dir, ignore_errors=True)  # the cell file now holds everything
    return cell


def _features(
    spec: str, checkpoint: TransformerFiles, task: Task, config: FinetuneConfig, *, progress: bool
) -> np.ndarray:
    """Pooled features of the checkpoint (``checkpoint``) or of a featuriser spec (cached)."""
    encoder = (
        TransformerEncoder(checkpoint, pooling=config.training.pooling, device=config.training.device)
        if spec == CHECKPOINT
        else parse_encoder_spec(spec)
    )
    return compute_task_embedding(encoder, task, progress=progress).values.astype(np.float64)


def _result_row(
    method: str, features: str, y_true: np.ndarray, pred: np.ndarray, extra: dict[str, Any]
) -> dict[str, Any]:
    m = regression_metrics(y_true, pred)
    return {"method": method, "features": features, "rmse": m.rmse, "mae": m.mae, "r2": m.r2, **extra}
