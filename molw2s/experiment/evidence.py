"""Independent evidence for "does a predictor rank the weak models' W2S error?"
(docs/experiment.md "Independent evidence" and "Calibrated statistics").

Weak models carry a ``kind`` and a ``source`` (:mod:`molw2s.experiment.model_info`): the
layer and pooling variants of one checkpoint share its source, each featuriser is its own
source, and controlled models (built from the strong representation) are never independent
evidence. A correlation is computed over one point per source: the mean over the source's
models and seeds (and pretraining replicates) of each quantity, with PGR recomputed from the
mean errors. Every statistic then sees independent points: an exact (or Monte Carlo)
permutation p-value, an interval whose coverage is checked by simulation, the smallest rho
the run's number of sources can detect, the leave-one-source-out range, and a verdict in
words that follow those numbers and the predictor's expected sign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from molw2s.analysis.correlations import correlation
from molw2s.analysis.inference import (
    leave_one_out,
    min_detectable_rho,
    permutation_pvalue,
    rho_interval,
    verdict_words,
)
from molw2s.experiment.model_info import CONTROLLED_SOURCE
from molw2s.w2s.metrics import pgr_of_means

#: the source of every controlled model (never independent evidence)
CONTROLLED = CONTROLLED_SOURCE

#: the sign theory expects of rho(predictor, measured); pairs not listed have no expected sign.
#: Err_w2s rises with M, M_F, PredGap_hat and Err_w; Charikar et al.: Err_w2s <= Err_w - Misfit,
#: so a larger misfit means a smaller Err_w2s; CKA is a similarity, the opposite of M.
EXPECTED_SIGN: dict[tuple[str, str], int] = {
    ("M", "err_w2s"): 1,
    ("M_F", "err_w2s"): 1,
    ("predgap_hat", "err_w2s"): 1,
    ("err_w", "err_w2s"): 1,
    ("misfit", "err_w2s"): -1,
    ("cka", "err_w2s"): -1,
    ("M", "predgap"): 1,
    ("M_F", "predgap"): 1,
    ("predgap_hat", "predgap"): 1,
    ("M", "pgr"): -1,
    ("M_F", "pgr"): -1,
    ("predgap_hat", "pgr"): -1,
}
#: columns never averaged into a source point
_LABELS = ("task", "weak", "strong", "kind", "source", "solver", "solver_w", "scale", "rule", "rule_label", "cell")


def source_cells(cells: pd.DataFrame, keys: Sequence[str] = ("seed",)) -> pd.DataFrame:
    """One row per (source, *keys): the mean of every numeric column over the source's
    models, with ``pgr`` recomputed from the mean errors, the source's ``kind`` and
    ``n_models`` the models merged."""
    numeric = [
        c for c in cells.columns if c not in _LABELS and c not in keys and pd.api.types.is_numeric_dtype(cells[c])
    ]
    grouped = cells.groupby(["source", *keys], sort=True)
    out = grouped[numeric].mean()
    out["n_models"] = grouped["weak"].nunique()
    out["kind"] = grouped["kind"].first()
    return _with_pgr(out.reset_index())


def source_points(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per source: the mean over its seeds and replicates of :func:`source_cells`'
    rows (PGR of the means)."""
    drop = {"seed", "replicate", "n_models"}
    numeric = [
        c for c in cells.columns if c not in _LABELS and c not in drop and pd.api.types.is_numeric_dtype(cells[c])
    ]
    grouped = cells.groupby("source", sort=True)
    out = grouped[numeric].mean()
    out["n_models"] = grouped["n_models"].max()
    out["kind"] = grouped["kind"].first()
    return _with_pgr(out.reset_index())


def _with_pgr(frame: pd.DataFrame) -> pd.DataFrame:
    if {"err_w", "err_w2s", "err_sc"} <= set(frame.columns):
        frame["pgr"] = pgr_of_means(frame["err_w"], frame["err_w2s"], frame["err_sc"])
        frame["gain"] = frame["err_w"] - frame["err_w2s"]
        frame["predgap"] = frame["err_w2s"] - frame["err_sc"]
    return frame


@dataclass(frozen=True)
class CorrelationTest:
    """Spearman rho of a predictor with a measured quantity over independent points, with
    everything needed to read it."""

    predictor: str
    measured: str
    method: str
    n_sources: int
    value: float
    p_value: float
    p_exact: bool
    ci_low: float
    ci_high: float
    interval: str
    n_dropped: int
    min_detectable: float
    loo_low: float
    loo_high: float
    expected_sign: int
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for results.json and correlations.csv."""
        return asdict(self)


def correlation_tests(
    points: pd.DataFrame,
    predictors: Sequence[str],
    measured: Sequence[str],
    *,
    confidence: float,
    min_sources: int,
    seed: int = 0,
) -> list[CorrelationTest]:
    """Every (predictor, measured) Spearman test over ``points`` (one row per source); a
    pair with missing values uses the points that have both."""
    alpha = 1.0 - confidence
    out = []
    for p in predictors:
        for m in measured:
            if p not in points.columns or m not in points.columns:
                continue
            sub = points[[p, m]].dropna()
            x, y = sub[p].to_numpy(float), sub[m].to_numpy(float)
            out.append(_test(p, m, x, y, confidence=confidence, alpha=alpha, min_sources=min_sources, seed=seed))
    return out


def _test(
    predictor: str,
    measured: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    confidence: float,
    alpha: float,
    min_sources: int,
    seed: int,
) -> CorrelationTest:
    n = len(x)
    sign = EXPECTED_SIGN.get((predictor, measured), 0)
    nan = float("nan")
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        why = f"no verdict: {n} points" if n < 3 else "no verdict: a constant column"
        return CorrelationTest(predictor, measured, "spearman", n, correlation(x, y, "spearman") if n >= 2 else nan,
                               nan, False, nan, nan, "none", 0, nan, nan, nan, sign, why)  # fmt: skip
    rho = correlation(x, y, "spearman")
    alternative = "two-sided"
    test = permutation_pvalue(x, y, "spearman", alternative=alternative, seed=seed)
    interval = rho_interval(x, y, confidence=confidence, method="spearman")
    loo = leave_one_out(x, y, "spearman")
    if sign == 0:
        words = f"no expected sign (rho = {rho:.2f}, p = {test.p_value:.3g}, n = {n})"
    else:
        words = verdict_words(rho, interval.low, interval.high, test.p_value, sign, n, min_sources, alpha=alpha)
    return CorrelationTest(
        predictor,
        measured,
        "spearman",
        n,
        rho,
        test.p_value,
        test.exact,
        interval.low,
        interval.high,
        interval.method,
        interval.n_degenerate,
        min_detectable_rho(n, alpha=alpha),
        loo[0],
        loo[1],
        sign,
        words,
    )


def tests_frame(tests: Sequence[CorrelationTest]) -> pd.DataFrame:
    """The tests as a DataFrame, one row per (predictor, measured)."""
    frame: pd.DataFrame = pd.DataFrame([t.to_dict() for t in tests])
    return frame
