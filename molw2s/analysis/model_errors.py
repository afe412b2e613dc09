"""Per weak model, its test errors combined over seeds the one way every table and figure
uses: the seed means of the MSEs Err_w, Err_w2s and Err_sc, their square roots (RMSE in
the task's units) and the PGR of the means. Never a mean of per-seed ratios or roots:
those are biased and blow up when a seed's gap Err_w - Err_sc is near 0."""

from __future__ import annotations

import numpy as np
import pandas as pd

from molw2s.w2s.metrics import pgr_of_means

#: the test MSEs of a cell: weak model, W2S student, strong ceiling
ERRORS = ("err_w", "err_w2s", "err_sc")


def seed_mean_errors(table: pd.DataFrame, *, model_col: str = "weak") -> pd.DataFrame:
    """Per model (index, in first-seen order): the seed means of :data:`ERRORS`, the RMSEs
    ``rmse_w``, ``rmse_w2s``, ``rmse_sc`` as square roots of those means, and ``pgr``,
    (Err_w - Err_w2s) / (Err_w - Err_sc) of the means, NaN when Err_w <= Err_sc (a model
    not weaker than the ceiling has no gap to recover)."""
    out: pd.DataFrame = table.groupby(model_col, sort=False)[list(ERRORS)].mean()
    for col in ERRORS:
        out[col.replace("err", "rmse")] = np.sqrt(out[col])
    out["pgr"] = pgr_of_means(out["err_w"], out["err_w2s"], out["err_sc"])
    return out
