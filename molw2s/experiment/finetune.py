"""``molw2s finetune``: a checkpoint finetuned end to end on tasks over split seeds, beside
frozen-feature baselines (ridge and RBF SVR on pooled features, RDKit descriptors).

Each (task, seed) is one JSON file under ``<run_dir>/cells`` named by a content hash of
what produced it, so a rerun skips finished work; the finetuning state of the seed in
progress is saved every epoch under ``<run_dir>/state`` and resumed. The report
(``<run_dir>/report``) has ``results.json``, ``results.csv`` (one row per task, seed and
method), ``summary.csv`` / ``report.md`` / ``report.html`` (mean +- std over seeds) and a
predicted-vs-measured figure per task. Every error is in the task's original units.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from molw2s.analysis.document import Document
from molw2s.analysis.plots import parity_plot, save_figure
from molw2s.data.prepare import TaskSplit, load_task_spec, split_task_seeds
from molw2s.data.tasks import Task
from molw2s.encoders.embed import TransformerEncoder, compute_task_embedding, parse_encoder_spec
from molw2s.errors import ConfigError, DataError
from molw2s.experiment.config import FinetuneConfig
from molw2s.finetuning.baselines import fit_baseline
from molw2s.finetuning.model import check_freeze
from molw2s.finetuning.trainer import LabelledSmiles, finetune_regressor
from molw2s.io import (
    content_hash,
    file_digest,
    read_json_checked,
    safe_filename,
    write_json_atomic,
    write_json_checked,
    write_text_atomic,
)
from molw2s.tracking import LOG_DIR, Tracking
from molw2s.w2s.metrics import regression_metrics

CELL_VERSION = "finetune-cell-v1"
CHECKPOINT = "checkpoint"  # in baselines.features: the finetuned checkpoint's own pooled features


def resolve_checkpoint(config: FinetuneConfig) -> Path:
    """The model directory ``config.model`` names (a path, or a member of ``config.family``)."""
    text = config.model[5:] if config.model.lower().startswith("bert:") else config.model
    members: dict[str, Path] = {}
    if config.family is not None:
        from molw2s.pretraining.config import load_family_config
        from molw2s.pretraining.family import family_models

        members = family_models(load_family_config(config.family), config.family_run_dir)
    if text in members:
        if not (members[text] / "model.safetensors").is_file():
            raise ConfigError(
                f"model {text!r} of family {config.family} is not trained yet ({members[text]}): "
                f"run `molw2s pretrain {config.family}` first"
            )
        return members[text]
    path = Path(text).expanduser()
    if not path.is_dir():
        what = (
            f"is neither a model directory nor a member of the family ({', '.join(members)})"
            if members
            else "is not a model directory (or set family: to name one of its members)"
        )
        raise ConfigError(f"model {config.model!r} {what}")
    return path


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
    checkpoint = resolve_checkpoint(config)
    if config.end_to_end:
        layers = json.loads((checkpoint / "config.json").read_text())["num_hidden_layers"]
        check_freeze(config.training.freeze, int(layers), "training.freeze")
    cells = []
    for spec in config.tasks:
        task = load_task_spec(spec, data_dir=config.data_dir, strict=config.strict)
        for parts in split_task_seeds(task, config.splits, data_dir=config.data_dir):
            cells.append(_cell(task, parts, checkpoint, config, run_dir, progress=progress, tracking=tracking))
    return write_finetune_report(cells, config, checkpoint, run_dir / "report")


def _cell(
    task: Task,
    parts: TaskSplit,
    checkpoint: Path,
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
        file_digest(checkpoint / "model.safetensors", "sha256"),
        task.name,
        task.smiles,
        task.y,
        split.as_dict(),
        config.training.model_dump(),
        config.end_to_end,
        config.baselines.model_dump(),
    )
    path = run_dir / "cells" / f"{safe_filename(task.name)}.seed{parts.seed}.{key}.json"
    cached = read_json_checked(path)
    if cached is not None and cached.get("cell") == key:
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
        "checkpoint": str(checkpoint),
        "sizes": {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)},
        "n_split_rows_dropped": parts.n_dropped,
        "results": results,
        "test_rows": split.test.tolist(),
        "y_test": y_test.tolist(),
        "predictions": predictions,
    }
    write_json_checked(path, cell)
    shutil.rmtree(state_dir, ignore_errors=True)  # the cell file now holds everything
    return cell


def _features(spec: str, checkpoint: Path, task: Task, config: FinetuneConfig, *, progress: bool) -> np.ndarray:
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


def results_frame(cells: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per task, seed and method: RMSE, MAE and R^2 on the test part."""
    rows = [
        {"task": c["task"], "seed": c["seed"], **{k: r[k] for k in ("method", "rmse", "mae", "r2")}}
        for c in cells
        for r in c["results"]
    ]
    frame: pd.DataFrame = pd.DataFrame(rows, columns=["task", "seed", "method", "rmse", "mae", "r2"])
    return frame


def summary_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every metric, per task and method (input order kept)."""
    grouped = results.groupby(["task", "method"], sort=False)[["rmse", "mae", "r2"]]
    summary = grouped.agg(["mean", "std"])
    summary.columns = [f"{col[0]}_{col[1]}" for col in summary.columns]
    summary.insert(0, "n_seeds", grouped.size())
    flat: pd.DataFrame = summary.reset_index()
    return flat


def write_finetune_report(
    cells: list[dict[str, Any]], config: FinetuneConfig, checkpoint: Path, out_dir: Path
) -> dict[str, Any]:
    """results.json / results.csv / summary.csv, report.md + report.html and one parity
    figure per task under ``out_dir``; returns results.json's content."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = results_frame(cells)
    summary = summary_frame(results)
    results.to_csv(out_dir / "results.csv", index=False)
    summary.to_csv(out_dir / "summary.csv", index=False)
    doc = Document(f"Finetuning: {config.name}")
    doc.paragraph(
        f"Checkpoint `{checkpoint}`; split `{config.splits.method}`, seeds {config.splits.seeds}. "
        "Test-set errors in each task's original units, mean +- std over seeds. `finetune`: the encoder "
        "and a linear head trained end to end (best validation epoch); `ridge(F)` / `svr(F)`: frozen "
        "features F, hyperparameter picked on the validation part, refit on train + validation."
    )
    doc.table(_readable(summary))
    for task in dict.fromkeys(c["task"] for c in cells):
        part = [c for c in cells if c["task"] == task]
        shown = "finetune" if "finetune" in part[0]["predictions"] else next(iter(part[0]["predictions"]), None)
        if shown is None:
            continue
        frame = pd.DataFrame(
            [
                {"seed": c["seed"], "measured": y, "predicted": p}
                for c in part
                for y, p in zip(c["y_test"], c["predictions"][shown], strict=True)
            ]
        )
        stem = f"parity_{safe_filename(task)}"
        save_figure(parity_plot(frame, title=f"{task}: {shown}, test parts"), out_dir / "figures" / stem)
        doc.image(f"figures/{stem}.png", f"{task}: predicted ({shown}) vs measured on each seed's test part")
    write_text_atomic(out_dir / "report.md", doc.to_markdown())
    write_text_atomic(out_dir / "report.html", doc.to_html())
    payload = {
        "config": config.model_dump(mode="json"),
        "checkpoint": str(checkpoint),
        "summary": summary.replace({np.nan: None}).to_dict(orient="records"),
        "cells": cells,
    }
    write_json_atomic(out_dir / "results.json", payload)
    return payload


def _readable(summary: pd.DataFrame) -> pd.DataFrame:
    """``task, method, seeds, RMSE, MAE, R^2`` with ``mean +- std`` strings."""

    def pm(metric: str) -> pd.Series:
        return summary.apply(
            lambda r: (
                f"{r[f'{metric}_mean']:.3f} +- {r[f'{metric}_std']:.3f}"
                if pd.notna(r[f"{metric}_std"])
                else f"{r[f'{metric}_mean']:.3f}"
            ),
            axis=1,
        )

    table: pd.DataFrame = pd.DataFrame(
        {
            "task": summary["task"],
            "method": summary["method"],
            "seeds": summary["n_seeds"],
            "RMSE": pm("rmse"),
            "MAE": pm("mae"),
            "R^2": pm("r2"),
        }
    )
    return table
