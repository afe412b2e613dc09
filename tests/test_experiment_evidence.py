"""Independent evidence: one point per source, controlled models apart, replicates, and
verdicts that follow the numbers (molw2s.experiment.evidence / run_statistics)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from molw2s.experiment.config import EvaluationSettings
from molw2s.experiment.evidence import source_cells, source_points
from molw2s.experiment.run_statistics import evaluate_task


def _cells(n_sources=12, *, variants=0, controlled=3, replicates=(0,), seeds=(0, 1, 2), flip_replicate=None):
    """Cells whose Err_w2s rises with M across sources (rank-perfect), every weak model 2x
    above the ceiling; ``variants`` extra ``|layer=0`` models per source with a scrambled M."""
    rng = np.random.default_rng(0)
    rows = []
    names = [(f"m{i}", f"m{i}", "fingerprint", i) for i in range(n_sources)]
    names += [(f"m{i}|layer=0", f"m{i}", "transformer", n_sources - 1 - i) for i in range(variants)]
    names += [(f"ctrl:noise={j}", "controlled", "controlled", j) for j in range(controlled)]
    for rep in replicates:
        for seed in seeds:
            for weak, source, kind, rank in names:
                m = (rank + 1) / (n_sources + 1)
                if flip_replicate is not None and rep == flip_replicate:
                    m = 1 - m
                err_w2s = 2.0 + rank + 0.01 * rng.standard_normal()
                row = {
                    "task": "t", "seed": seed, "weak": weak, "source": source, "kind": kind,
                    "M": m, "M_F": m * 10, "predgap_hat": m, "misfit": 0.1, "err_w": 2 * err_w2s + 1,
                    "err_w2s": err_w2s, "err_sc": 1.0, "cka": 1 - m, "k_w": 5, "k_s": 5,
                    "rmse_w": 0.0, "rmse_w2s": 0.0, "rmse_sc": 1.0,
                }  # fmt: skip
                row["gain"], row["predgap"] = row["err_w"] - err_w2s, err_w2s - 1.0
                row["pgr"] = row["gain"] / (row["err_w"] - 1.0)
                if len(replicates) > 1:
                    row["replicate"] = rep
                rows.append(row)
    return pd.DataFrame(rows)


def _sens(cells):
    return cells.assign(rule="flat_tail(c=3)")[
        [
            "task",
            "seed",
            "weak",
            "kind",
            "source",
            "rule",
            "M",
            "M_F",
            "predgap_hat",
            "k_w",
            "k_s",
            "err_w",
            "err_w2s",
            "err_sc",
        ]
    ]


def _evaluate(cells, **settings):
    return evaluate_task("t", cells, _sens(cells), EvaluationSettings(n_boot=100, **settings))


def test_variants_of_a_checkpoint_are_one_point_and_pgr_is_recomputed():
    cells = _cells(4, variants=2, controlled=0)
    per_seed = source_cells(cells)
    assert len(per_seed) == 4 * 3 and set(per_seed.loc[per_seed.source == "m0", "n_models"]) == {2}
    points = source_points(per_seed).set_index("source")
    both = cells[cells.source == "m0"]
    assert points.loc["m0", "M"] == pytest.approx(both.M.mean())
    expected = (both.err_w.mean() - both.err_w2s.mean()) / (both.err_w.mean() - both.err_sc.mean())
    assert points.loc["m0", "pgr"] == pytest.approx(expected)


def test_headline_counts_sources_not_models_and_keeps_controlled_apart():
    te = _evaluate(_cells(12, variants=6, controlled=3))
    head = te.corr.set_index(["predictor", "measured"]).loc[("M", "err_w2s")]
    assert head.n_sources == 12 and head.verdict.startswith("supports")
    assert "ctrl:noise=0" not in set(te.candidates.weak)
    assert te.controlled is not None and te.controlled.n_sources == 3
    assert "Validation on the 3 controlled models" in te.interpretation
    # eleven sources but 6 of them counted twice would be "12+6 models": the count says sources
    assert "Across 12 independent sources (18 weak models" in te.interpretation


def test_no_verdict_below_the_minimum_and_for_a_task_that_is_not_a_w2s_regime():
    few = _evaluate(_cells(8, controlled=0))
    assert "no verdict (n = 8 < 11" in few.interpretation
    not_weaker = _cells(12, controlled=0).assign(err_sc=1e6)
    te = _evaluate(not_weaker)
    assert te.regime.status == "none" and "NOT a W2S regime" in te.interpretation
    assert "Verdict: no verdict: not a W2S regime" in te.interpretation
    kept = _evaluate(not_weaker, exclude_not_weaker=False)
    assert kept.corr.set_index(["predictor", "measured"]).loc[("M", "err_w2s"), "n_sources"] == 12


def test_expected_signs_judge_each_predictor():
    tests = _evaluate(_cells(12, controlled=0)).corr.set_index(["predictor", "measured"])
    assert tests.loc[("cka", "err_w2s"), "verdict"].startswith("supports (expected sign -")
    assert tests.loc[("err_w", "err_w2s"), "verdict"].startswith("supports (expected sign +")
    assert tests.loc[("M", "gain"), "verdict"].startswith("no expected sign")


def test_replicates_are_tested_one_by_one_and_disagreement_is_said():
    same = _evaluate(_cells(12, controlled=0, replicates=(0, 1)))
    assert same.replicates is not None and list(same.replicates.replicate) == [0, 1]
    assert "the verdict is the same in every replicate" in same.interpretation
    flipped = _evaluate(_cells(12, controlled=0, replicates=(0, 1), flip_replicate=1))
    assert flipped.replicates.rho.tolist() == pytest.approx([1.0, -1.0])
    assert "NOT the same in every replicate" in flipped.interpretation
    assert set(flipped.regret.units) == {6}  # 3 split seeds x 2 replicates
