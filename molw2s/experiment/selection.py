"""Selection regret (docs/experiment.md "Selection regret"): what a practitioner loses by
choosing the weak supervisor with a criterion instead of knowing the best one.

In every selection unit (one split seed, and one pretraining replicate when there are
several) each criterion picks one candidate weak model; its regret is the test RMSE of the
W2S student it gives minus the best RMSE any candidate gives in that unit (the oracle), in
the task's units. Criteria (the candidate with the smallest value is chosen):

- ``M``: the label-free predictor ||P_s (I - P_w)||_op;
- ``Err_w``: the weak model's own test error (needs test labels of the weak model);
- ``PredGap_hat``: the label-based predicted gap;
- ``Err_w - Misfit``: the bound of Charikar et al. (Err_w2s <= Err_w - Misfit), whose
  right side is the predicted Err_w2s;
- ``random``: a uniform choice; its regret is the mean regret over the candidates.

The mean regret over units has a t interval over units (units are independent splits or
replicates; with three of them the interval is honest and wide).

The same machinery chooses a strong student for a fixed weak model across runs that share
tasks, splits and weak models (``molw2s report RUN --compare-strong OTHER_RUN ...``).
There raw M is not comparable: M is the largest singular value of P_s (I - P_w), and
enlarging P_s's principal subspace can only raise it (for projections it is a supremum over
a larger set), so it favours the strong model with the smaller k_s whatever it learns.
M_F / k_s, the squared missed part averaged over the strong principal directions (in
[0, 1] for projections; ||P_s||_F^2 <= k_s with the shrinkage weights), is the comparable
form; Err_sc (the ceiling, which needs gold labels on D_s) is the label-based baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.stats

Criteria = dict[str, Callable[[pd.DataFrame], pd.Series]]
#: choosing the weak supervisor: criterion name -> the per-cell score it minimises
WEAK_CRITERIA: Criteria = {
    "M": lambda cells: cells["M"],
    "Err_w": lambda cells: cells["err_w"],
    "PredGap_hat": lambda cells: cells["predgap_hat"],
    "Err_w - Misfit": lambda cells: cells["err_w"] - cells["misfit"],
}
#: choosing the strong student for a fixed weak model (see the module docstring)
STRONG_CRITERIA: Criteria = {
    "M (raw)": lambda cells: cells["M"],
    "M_F / k_s": lambda cells: cells["M_F"] / cells["k_s"],
    "Err_sc": lambda cells: cells["err_sc"],
}
RANDOM = "random"


def selection_regret(
    cells: pd.DataFrame,
    *,
    criteria: Criteria = WEAK_CRITERIA,
    unit_cols: Sequence[str] = ("seed",),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per criterion (and ``random``): the mean regret in RMSE (task units) over selection
    units (the rows sharing ``unit_cols`` are one unit's candidates) with its t interval, the
    mean relative regret (regret / oracle RMSE), how often the criterion picked the oracle's
    candidate, and the number of units and candidates."""
    units = [g for _, g in cells.groupby(list(unit_cols), sort=True) if len(g) >= 2]
    regrets: dict[str, list[float]] = {name: [] for name in [*criteria, RANDOM]}
    relative: dict[str, list[float]] = {name: [] for name in regrets}
    hits: dict[str, int] = dict.fromkeys(regrets, 0)
    for unit in units:
        rmse = np.sqrt(unit["err_w2s"].to_numpy(float))
        best = float(rmse.min())
        for name, score in criteria.items():
            scores = score(unit).to_numpy(float)
            if not np.isfinite(scores).any():
                continue
            pick = int(np.nanargmin(scores))
            regrets[name].append(float(rmse[pick]) - best)
            relative[name].append((float(rmse[pick]) - best) / best)
            hits[name] += int(rmse[pick] == best)
        regrets[RANDOM].append(float(rmse.mean()) - best)
        relative[RANDOM].append((float(rmse.mean()) - best) / best)
    records = []
    for name, unit_regrets in regrets.items():
        low, high = _t_interval(unit_regrets, confidence)
        records.append(
            {
                "criterion": name,
                "mean regret (RMSE)": float(np.mean(unit_regrets)) if unit_regrets else float("nan"),
                "CI low": low,
                "CI high": high,
                "mean relative regret": float(np.mean(relative[name])) if unit_regrets else float("nan"),
                "picked the best": f"{hits[name]}/{len(unit_regrets)}" if name != RANDOM else "-",
                "units": len(unit_regrets),
                "candidates": int(np.median([len(u) for u in units])) if units else 0,
            }
        )
    frame: pd.DataFrame = pd.DataFrame(records)
    return frame


def _t_interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    """Student-t interval of the mean; NaN with fewer than two values."""
    if len(values) < 2:
        return float("nan"), float("nan")
    arr = np.asarray(values, dtype=float)
    half = scipy.stats.t.ppf((1 + confidence) / 2, len(arr) - 1) * arr.std(ddof=1) / np.sqrt(len(arr))
    return float(arr.mean() - half), float(arr.mean() + half)
