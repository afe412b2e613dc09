"""``molw2s finetune``'s report: ``results.json``, ``results.csv`` (one row per task, seed and
method), ``summary.csv`` / ``report.md`` / ``report.html`` (mean +- std over seeds) and a
predicted-vs-measured figure per task, from the cells of :mod:`molw2s.experiment.finetune`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from molw2s.analysis.document import Document
from molw2s.analysis.plots import parity_plot, save_figure
from molw2s.experiment.config import FinetuneConfig
from molw2s.io import safe_filename, write_json_atomic, write_text_atomic


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
