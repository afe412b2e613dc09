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

from molw2s.analysis.correlations import average_ranks, cluster_bootstrap, correlation


@dataclass(frozen=True)
class PairedStat:
    """One statistic with its bootstrap interval."""

    statistic: str
    value: float
    ci_low: float
    ci_high: float
    n_models: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON/CSV."""
        return asdict(self)


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Spearman correlation of x and y given z: the Pearson correlation of the ranks of x
    and y after the ranks of z are regressed out (NaN when undefined)."""
    rx, ry, rz = (average_ranks(np.asarray(v, dtype=float)) for v in (x, y, z))
    if len(rx) < 4 or np.ptp(rz) == 0:
        return float("nan")
    design = np.column_stack([np.ones_like(rz), rz])
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    return correlation(res_x, res_y, "pearson")


def rank_r2_gain(y: np.ndarray, base: np.ndarray, added: np.ndarray) -> float:
    """R^2 of the ranks of y regressed on the ranks of (base, added) minus R^2 on base alone."""
    ry, rb, ra = (average_ranks(np.asarray(v, dtype=float)) for v in (y, base, added))
    if len(ry) < 4 or np.ptp(ry) == 0:
        return float("nan")
    return _r2(ry, np.column_stack([rb, ra])) - _r2(ry, rb[:, None])


def _r2(y: np.ndarray, X: np.ndarray) -> float:
    design = np.column_stack([np.ones(len(y)), X])
    fitted = design @ np.linalg.lstsq(design, y, rcond=None)[0]
    return float(1.0 - np.sum((y - fitted) ** 2) / np.sum((y - y.mean()) ** 2))


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

    def statistic(pick: np.ndarray) -> np.ndarray:
        p, b, m = (means[c][pick] for c in cols)
        return np.array(
            [
                _within_seed(per_seed[predictor][pick], per_seed[measured][pick]),
                _within_seed(per_seed[baseline][pick], per_seed[measured][pick]),
                partial_spearman(p, m, b),
                rank_r2_gain(m, b, p),
                correlation(p, m, "spearman") - correlation(b, m, "spearman"),
            ]
        )

    names = [
        f"within-seed rho({predictor}, {measured})",
        f"within-seed rho({baseline}, {measured})",
        f"partial rho({predictor}, {measured} | {baseline})",
        f"rank R^2 gain of {predictor} over {baseline}",
        f"rho({predictor}, {measured}) - rho({baseline}, {measured})",
    ]
    rng = np.random.default_rng(seed)
    point, low, high, _ = cluster_bootstrap(len(models), statistic, n_boot=n_boot, confidence=confidence, rng=rng)
    return [PairedStat(n, float(v), float(lo), float(hi), len(models)) for n, v, lo, hi in zip(names, point, low, high)]


def _within_seed(predictor: np.ndarray, measured: np.ndarray) -> float:
    """Mean over seeds (columns) of the Spearman correlation across models (rows)."""
    rhos = []
    for k in range(predictor.shape[1]):
        ok = np.isfinite(predictor[:, k]) & np.isfinite(measured[:, k])
        if ok.sum() >= 2:
            rhos.append(correlation(predictor[ok, k], measured[ok, k], "spearman"))
    finite = [r for r in rhos if np.isfinite(r)]
    return float(np.mean(finite)) if finite else float("nan")


def verdict(difference: PairedStat, baseline: str, predictor: str = "M") -> str:
    """``beats`` / ``trails`` when the interval of rho(predictor) - rho(baseline) excludes
    zero, ``matches`` (cannot be told apart) when it covers zero or is missing."""
    if np.isfinite(difference.ci_low) and difference.ci_low > 0:
        return f"{predictor} beats {baseline}"
    if np.isfinite(difference.ci_high) and difference.ci_high < 0:
        return f"{predictor} trails {baseline}"
    return f"{predictor} and {baseline} cannot be told apart"
