"""Analyses that ask more of the data than a correlation of seed means (docs/experiment.md):

- the mean over seeds of the within-seed Spearman correlation (every weak model of a seed
  shares that seed's test set, so test-set difficulty cancels);
- whether a label-free predictor adds to a label-based baseline: the partial Spearman
  correlation of the predictor with the measured quantity given the baseline, and the
  gain in rank R^2 when the predictor joins the baseline in a linear regression;
- a paired comparison: the difference of two predictors' Spearman correlations with the
  same measured quantity, and a verdict (beats / matches / trails).

Every interval is a percentile cluster bootstrap over weak models
(:func:`molw2s.analysis.correlations.cluster_bootstrap`): a drawn model brings all its
seeds, and both sides of a paired quantity are computed on the same draw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from molw2s.analysis.correlations import average_ranks_rows, batched_correlations, cluster_bootstrap, correlation

#: residual ranks this small against the ranks' spread count as fully explained (rounding noise)
EXPLAINED = 1e-9


@dataclass(frozen=True)
class PairedStat:
    """One statistic with its bootstrap interval."""

    statistic: str
    value: float
    ci_low: float
    ci_high: float
    n_models: int
    n_dropped: int = 0
    """Bootstrap resamples in which the statistic was undefined (skipped, not in the interval)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON/CSV."""
        return asdict(self)


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Spearman correlation of x and y given z: the Pearson correlation of the ranks of x
    and y after the ranks of z are regressed out (NaN when undefined)."""
    rows = (np.asarray(v, dtype=float)[None] for v in (x, y, z))
    return float(_partial_spearman_rows(*rows)[0])


def rank_r2_gain(y: np.ndarray, base: np.ndarray, added: np.ndarray) -> float:
    """R^2 of the ranks of y regressed on the ranks of (base, added) minus R^2 on base alone."""
    rows = (np.asarray(v, dtype=float)[None] for v in (y, base, added))
    return float(_rank_r2_gain_rows(*rows)[0])


def _partial_spearman_rows(X: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """:func:`partial_spearman` of each row (a bootstrap's resamples at once): residuals of
    the least-squares line on the ranks of z, in closed form."""
    out = np.full(len(X), np.nan)
    rz = _centered(average_ranks_rows(Z))
    ok = (X.shape[1] >= 4) & (np.ptp(rz, axis=1) > 0)
    if not ok.any():
        return out
    rz = rz[ok]
    ranks = [_centered(average_ranks_rows(V[ok])) for V in (X, Y)]
    res_x, res_y = (_residuals(r, rz) for r in ranks)
    values = batched_correlations(res_x, res_y, "pearson")
    # ranks that z explains exactly leave residuals of rounding noise: undefined, not noise's correlation
    for r, res in zip(ranks, (res_x, res_y), strict=True):
        values[np.ptp(res, axis=1) <= EXPLAINED * np.ptp(r, axis=1)] = np.nan
    out[ok] = values
    return out


def _rank_r2_gain_rows(Y: np.ndarray, B: np.ndarray, A: np.ndarray) -> np.ndarray:
    """:func:`rank_r2_gain` of each row: least squares on centered ranks through the
    pseudo-inverse (so collinear ranks give the one-regressor fit, as ``lstsq`` does)."""
    out = np.full(len(Y), np.nan)
    ry = _centered(average_ranks_rows(Y))
    ok = (Y.shape[1] >= 4) & (np.ptp(ry, axis=1) > 0)
    if not ok.any():
        return out
    ry, rb, ra = ry[ok], _centered(average_ranks_rows(B[ok])), _centered(average_ranks_rows(A[ok]))
    total = np.einsum("ij,ij->i", ry, ry)
    both = np.stack([rb, ra], axis=2)  # (rows, n, 2)
    fitted_both = both @ (np.linalg.pinv(both) @ ry[..., None])
    fitted_base = rb[..., None] @ (np.linalg.pinv(rb[..., None]) @ ry[..., None])
    sse = ((ry[..., None] - fitted_both) ** 2).sum(axis=(1, 2)), ((ry[..., None] - fitted_base) ** 2).sum(axis=(1, 2))
    out[ok] = (1.0 - sse[0] / total) - (1.0 - sse[1] / total)
    return out


def _centered(X: np.ndarray) -> np.ndarray:
    centered: np.ndarray = X - X.mean(axis=1, keepdims=True)
    return centered


def _residuals(V: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Residuals of each centered row of V after its least-squares line on the centered Z."""
    slope = np.einsum("ij,ij->i", V, Z) / np.einsum("ij,ij->i", Z, Z)
    residuals: np.ndarray = V - slope[:, None] * Z
    return residuals


def paired_analysis(
    table: pd.DataFrame,
    *,
    predictor: str,
    baseline: str,
    measured: str,
    model_col: str = "weak",
    seed_col: str = "seed",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[PairedStat]:
    """Within-seed Spearman of ``predictor`` (and of ``baseline``) with ``measured``, the
    partial Spearman of ``predictor`` given ``baseline``, the rank R^2 gain of adding
    ``predictor`` to ``baseline``, and the difference of their Spearman correlations (seed
    means), each with a cluster-bootstrap interval over weak models."""
    cols = [predictor, baseline, measured]
    wide = table.pivot_table(index=model_col, columns=seed_col, values=cols, aggfunc="mean")
    models = list(wide.index)
    per_seed = {c: wide[c].to_numpy(float) for c in cols}  # (n_models, n_seeds), NaN where a cell is missing
    means = {c: np.nanmean(v, axis=1) for c, v in per_seed.items()}

    def statistic(picks: np.ndarray) -> np.ndarray:
        p, b, m = (means[c][picks] for c in cols)  # (resamples, models)
        return np.stack(
            [
                _within_seed(per_seed[predictor][picks], per_seed[measured][picks]),
                _within_seed(per_seed[baseline][picks], per_seed[measured][picks]),
                _partial_spearman_rows(p, m, b),
                _rank_r2_gain_rows(m, b, p),
                batched_correlations(p, m, "spearman") - batched_correlations(b, m, "spearman"),
            ],
            axis=1,
        )

    names = [
        f"within-seed rho({predictor}, {measured})",
        f"within-seed rho({baseline}, {measured})",
        f"partial rho({predictor}, {measured} | {baseline})",
        f"rank R^2 gain of {predictor} over {baseline}",
        f"rho({predictor}, {measured}) - rho({baseline}, {measured})",
    ]
    rng = np.random.default_rng(seed)
    point, low, high, dropped = cluster_bootstrap(len(models), statistic, n_boot=n_boot, confidence=confidence, rng=rng)
    return [
        PairedStat(n, float(v), float(lo), float(hi), len(models), int(d))
        for n, v, lo, hi, d in zip(names, point, low, high, dropped, strict=True)
    ]


def _within_seed(predictor: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Per resample (axis 0), the mean over seeds (axis 2) of the Spearman correlation across
    models (axis 1), over the models that have both values in that seed; NaN if none is defined."""
    n_rows, _, n_seeds = predictor.shape
    rhos = np.full((n_rows, n_seeds), np.nan)
    for k in range(n_seeds):
        x, y = predictor[:, :, k], measured[:, :, k]
        ok = np.isfinite(x) & np.isfinite(y)
        complete = ok.all(axis=1)
        rhos[complete, k] = batched_correlations(x[complete], y[complete], "spearman")
        for row in np.flatnonzero(~complete & (ok.sum(axis=1) >= 2)):  # a model without this seed's cell
            rhos[row, k] = correlation(x[row, ok[row]], y[row, ok[row]], "spearman")
    finite = np.isfinite(rhos)
    counts = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means: np.ndarray = np.where(finite, rhos, 0.0).sum(axis=1) / counts
    means[counts == 0] = np.nan
    return means


def paired_sentence(stats: list[PairedStat], baseline: str, predictor: str = "M") -> str:
    """The comparison of ``predictor`` with a label-based ``baseline`` in words that follow
    both intervals of :func:`paired_analysis`'s output: the difference of rho decides
    beats / trails; when it cannot decide, the partial rho still says whether the predictor
    adds information beyond the baseline (and with which sign)."""
    partial, difference = stats[2], stats[-1]
    diff = f"difference of rho {difference.value:.2f} {_interval(difference)}"
    part = f"partial rho of {predictor} given {baseline} {partial.value:.2f} {_interval(partial)}"
    if _above(difference):
        head = f"{predictor} ranks Err_w2s better than {baseline}"
    elif _below(difference):
        head = f"{predictor} ranks Err_w2s worse than {baseline}"
    else:
        head = f"the difference between {predictor} and {baseline} is not resolved"
    if not np.isfinite(partial.value):
        tail = f"and the partial rho given {baseline} is undefined (the baseline's ranks explain one side exactly)"
    elif _above(partial):
        tail = f"and {predictor} adds information beyond {baseline} (partial rho above 0)"
    elif _below(partial):
        tail = f"and {predictor} adds information beyond {baseline} with the opposite sign (partial rho below 0)"
    else:
        tail = f"and no information beyond {baseline} is shown (partial rho interval covers 0)"
    return f"Against the label-based {baseline}: {head} ({diff}), {tail} ({part})."


def _interval(stat: PairedStat) -> str:
    if not (np.isfinite(stat.ci_low) and np.isfinite(stat.ci_high)):
        return "[no interval]"
    dropped = f"; {stat.n_dropped} resamples undefined" if stat.n_dropped else ""
    return f"[{stat.ci_low:.2f}, {stat.ci_high:.2f}{dropped}]"


def _above(stat: PairedStat) -> bool:
    return bool(np.isfinite(stat.ci_low) and stat.ci_low > 0)


def _below(stat: PairedStat) -> bool:
    return bool(np.isfinite(stat.ci_high) and stat.ci_high < 0)
