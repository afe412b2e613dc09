"""Means and intervals across split seeds of per-seed differences.

Each reported difference (joint - single, method - random, two-stage - one-stage) is
computed within a seed (the same split, test set and weak labels) and summarised over
seeds by its mean and a Student-t interval: with the few seeds these experiments run (3
to 5) a percentile bootstrap over seeds has too few distinct resamples to give an
interval, while the t-interval is exact for normal per-seed differences. One seed gives
no interval (NaN bounds). :func:`summaries` makes every table of ``molw2s multicap``'s report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from molw2s.multicap import seed_experiments as ex


def seed_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of per-seed ``values`` with a t-interval at ``confidence``."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


def summarise(frame: pd.DataFrame, by: list[str], value: str, confidence: float = 0.95) -> pd.DataFrame:
    """Per group of ``by``: ``n_seeds``, ``mean``, ``ci_low``, ``ci_high`` of column ``value``
    (one row per seed expected in each group; group order kept)."""
    rows = []
    for key, group in frame.groupby(by, sort=False):
        mean, low, high = seed_interval(group[value].to_numpy(), confidence)
        keys = key if isinstance(key, tuple) else (key,)
        rows.append(
            {**dict(zip(by, keys, strict=True)), "n_seeds": len(group), "mean": mean, "ci_low": low, "ci_high": high}
        )
    out: pd.DataFrame = pd.DataFrame(rows, columns=[*by, "n_seeds", "mean", "ci_low", "ci_high"])
    return out


def summaries(records: dict[str, list[dict[str, Any]]], confidence: float) -> dict[str, pd.DataFrame]:
    """Seed-interval summaries of every experiment's errors and within-seed differences."""
    out: dict[str, pd.DataFrame] = {}
    frames = {name: pd.DataFrame(rows) for name, rows in records.items() if rows}
    if "independence" in frames:
        diff = ex.differences(frames["independence"], ["seed", "capability"], "trained_with", "alone")
        out["independence"] = _both(diff, ["trained_with", "capability"], confidence)
    if "quality" in frames:
        q = frames["quality"]
        out["quality"] = _errors(
            q,
            ["capability", "weak_model", "subset"],
            ["err_w", "err_w2s", "err_sc", "pgr", "n_scaffolds", "tanimoto_distance"],
            confidence,
        )
        diff = ex.differences(q, ["seed", "capability", "weak_model"], "subset", "random")
        out["diversity"] = _both(diff[diff["subset"] == "scaffold"], ["capability", "weak_model"], confidence)
    if "bootstrapping" in frames:
        b = frames["bootstrapping"]
        out["bootstrapping"] = _errors(b, ["capability", "round"], ["err_w2s", "pred_var", "pred_entropy"], confidence)
    if "selection" in frames:
        s = frames["selection"]
        out["selection"] = _errors(
            s, ["capability", "method", "fraction", "training"], ["err_w2s", "selected_error"], confidence
        )
        diff = ex.selection_differences(s)
        pooled = pd.DataFrame(
            diff.groupby(["seed", "comparison", "fraction"], sort=False, as_index=False)["rel_diff"].mean()
        )
        out["selection_differences"] = _both(diff, ["capability", "comparison", "fraction"], confidence)
        out["selection_pooled"] = _errors(pooled, ["comparison", "fraction"], ["rel_diff"], confidence)
    return out


def _errors(frame: pd.DataFrame, by: list[str], values: list[str], confidence: float) -> pd.DataFrame:
    """Mean and interval over seeds of each of ``values`` (columns ``<value>``, ``<value>_low``, ``<value>_high``)."""
    table: pd.DataFrame | None = None
    for value in values:
        part = summarise(frame, by, value, confidence).rename(
            columns={"mean": value, "ci_low": f"{value}_low", "ci_high": f"{value}_high"}
        )
        table = part if table is None else table.merge(part.drop(columns="n_seeds"), on=by)
    assert table is not None
    return table


def _both(diff: pd.DataFrame, by: list[str], confidence: float) -> pd.DataFrame:
    """Mean and interval over seeds of ``diff`` and ``rel_diff``."""
    return _errors(diff, by, ["diff", "rel_diff"], confidence)
