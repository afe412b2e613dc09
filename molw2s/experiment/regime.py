"""Is a task a weak-to-strong regime? (theory.md section 5; docs/experiment.md "Regime checks").

The theory describes a strong student that can do better than its weak teacher: it needs a
strong ceiling below the weak model's error. Per weak model, from its seed-mean test
errors (never from a mean of per-seed ratios):

- ``weaker``: Err_w >= (1 + margin) * Err_sc, the weak model is weaker than the ceiling by
  the stated margin;
- ``PGR`` = (Err_w - Err_w2s) / (Err_w - Err_sc) of the seed-mean errors;
- how many of its cells have a positive Gain = Err_w - Err_w2s.

A task is a W2S regime when every weak model that may enter the headline is weaker than the
ceiling; ``partial`` when some are not (they are listed and, by default, left out of the
headline); ``none`` when none is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from molw2s.analysis.model_errors import seed_mean_errors

RegimeStatus = Literal["w2s", "partial", "none"]


def model_regime(cells: pd.DataFrame, margin: float, *, model_col: str = "weak") -> pd.DataFrame:
    """Per weak model (one row each, in first-seen order): the seed-mean errors, their RMSEs
    and PGR (:func:`molw2s.analysis.model_errors.seed_mean_errors`), Err_w / Err_sc,
    ``weaker`` (Err_w >= (1 + margin) Err_sc), and ``cells_gain_positive`` of ``n_cells``."""
    grouped = cells.groupby(model_col, sort=False)
    out = seed_mean_errors(cells, model_col=model_col)
    out["err_w_over_sc"] = out["err_w"] / out["err_sc"]
    out["weaker"] = out["err_w"] >= (1.0 + margin) * out["err_sc"]
    out["cells_gain_positive"] = grouped["gain"].apply(lambda g: int((g > 0).sum()))
    out["n_cells"] = grouped.size()
    frame: pd.DataFrame = out.reset_index()
    return frame


@dataclass(frozen=True)
class TaskRegime:
    """The regime of one task: which weak models are weaker than the ceiling, and Gain's sign."""

    status: RegimeStatus
    margin: float
    not_weaker: tuple[str, ...]
    """Candidate weak models (not controlled) whose Err_w is within the margin of Err_sc or below it."""
    n_candidates: int
    cells_gain_positive: int
    n_cells: int
    """Cells of the candidate models (the share with Gain > 0 is over these)."""

    @property
    def gain_positive_share(self) -> float:
        """Share of the candidate models' cells with Gain > 0."""
        return self.cells_gain_positive / self.n_cells if self.n_cells else float("nan")

    def sentence(self, task: str) -> str:
        """The regime in words, with the numbers behind it."""
        share = f"Gain > 0 in {self.cells_gain_positive} of {self.n_cells} cells ({self.gain_positive_share:.0%})"
        if self.gain_positive_share < 0.5:
            share += ": the W2S student beats its weak teacher in fewer than half of them"
        if self.status == "w2s":
            return (
                f"{task} is a W2S regime: every one of the {self.n_candidates} weak models is weaker than the "
                f"strong ceiling by at least {self.margin:.0%} (seed-mean Err_w >= {1 + self.margin:g} Err_sc); "
                f"{share}."
            )
        listed = ", ".join(self.not_weaker)
        if self.status == "none":
            return (
                f"{task} is NOT a W2S regime: no weak model is weaker than the strong ceiling by {self.margin:.0%} "
                f"({listed}); the theory does not apply and no verdict is drawn. {share}."
            )
        return (
            f"{task} is a W2S regime for {self.n_candidates - len(self.not_weaker)} of {self.n_candidates} weak "
            f"models; not weaker than the ceiling by {self.margin:.0%}: {listed}. {share}."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for results.json."""
        return {
            "status": self.status,
            "margin": self.margin,
            "not_weaker": list(self.not_weaker),
            "n_candidates": self.n_candidates,
            "cells_gain_positive": self.cells_gain_positive,
            "n_cells": self.n_cells,
        }


def task_regime(cells: pd.DataFrame, models: pd.DataFrame, margin: float) -> TaskRegime:
    """The regime of a task from its candidate cells and their :func:`model_regime` rows."""
    not_weaker = tuple(str(w) for w in models.loc[~models["weaker"], "weak"])
    n = len(models)
    status: RegimeStatus = "w2s" if not not_weaker else ("none" if len(not_weaker) == n else "partial")
    return TaskRegime(status, margin, not_weaker, n, int((cells["gain"] > 0).sum()), len(cells))
