"""One W2S cell: measured errors from the protocol, predictors with the heads' scaling and betas."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_protocol import w2s_problem

from molw2s.experiment.cell import SPECTRUM_LENGTH, CellSplit, OperatorCache, run_cell
from molw2s.experiment.config import CellSettings
from molw2s.theory.baselines import linear_cka
from molw2s.theory.predictor import predict_w2s
from molw2s.theory.principal import principal_operator
from molw2s.w2s.heads import HeadConfig
from molw2s.w2s.protocol import run_w2s


def _task(seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, CellSplit]:
    H_w, H_s, y, parts = w2s_problem(seed=seed)
    return H_w, H_s, y, CellSplit(0, parts["weak_idx"], parts["strong_idx"], parts["test_idx"])


def _settings() -> CellSettings:
    return CellSettings(
        w2s={"head": {"beta": 0.2, "scale": "trace"}, "weak_head": {"beta": 0.4, "scale": "trace"}},
        predictor={"primary": {"rule": "tau", "tau": 0.8}, "sensitivity": [{"rule": "flat_tail"}]},
    )


def test_predictor_uses_the_heads_scaling_and_betas():
    H_w, H_s, y, split = _task()
    s, w = split.strong, split.weak
    row = run_cell(H_w, H_s, y, split, _settings())
    factor_w = np.sqrt(H_w[w].var(axis=0).mean())  # the weak head's factor, from D_w
    ref = predict_w2s(
        H_w[s], H_s[s], beta_w=0.4, beta_s=0.2, y=y[s], rule="tau", tau=0.8, scale="trace", factor_w=factor_w
    )
    assert row["M"] == pytest.approx(ref.M, rel=1e-12)
    assert row["predgap_hat"] == pytest.approx(ref.predgap_hat, rel=1e-12)
    assert row["cka"] == pytest.approx(linear_cka(H_w[s], H_s[s]))
    assert {"M", "M_F", "predgap_hat", "k_w", "k_s", "cka", "err_w2s", "pgr"} <= set(row)
    assert row["scale"] == "trace" and row["beta_w"] == 0.4
    assert row["rule_label"] == "tau=0.8" and set(row["sensitivity"]) == {"tau=0.8", "flat_tail(c=3)"}
    assert row["sensitivity"]["tau=0.8"]["M"] == row["M"]
    assert row["sensitivity"]["flat_tail(c=3)"]["rule_s"] == "flat_tail" and row["rule_w"] == "tau"
    op_s = principal_operator(H_s[s], 0.2, rule="tau", tau=0.8, scale="trace")  # strong factor: from D_s
    assert row["spectrum_s"] == pytest.approx(op_s.eigenvalues[:SPECTRUM_LENGTH].tolist(), rel=1e-10)
    assert len(row["spectrum_w"]) == min(SPECTRUM_LENGTH, H_w.shape[1])
    json.dumps(row)


def test_measured_part_is_the_protocol_and_predictor_can_be_skipped():
    H_w, H_s, y, split = _task(seed=2)
    settings = _settings()
    row = run_cell(H_w, H_s, y, split, settings, predictor=False)
    ref = run_w2s(
        H_w,
        H_s,
        y,
        weak_idx=split.weak,
        strong_idx=split.strong,
        test_idx=split.test,
        head=HeadConfig(beta=0.2),
        weak_head=HeadConfig(beta=0.4),
    )
    assert row == ref.to_dict()


def test_operator_cache_shares_the_strong_operator():
    H_w, H_s, y, split = _task(seed=3)
    cache = OperatorCache()
    a = run_cell(H_w, H_s, y, split, _settings(), operators=cache, names=("w1", "s"))
    n_ops = len(cache._ops)
    b = run_cell(H_w + 1.0, H_s, y, split, _settings(), operators=cache, names=("w2", "s"))
    assert len(cache._ops) == n_ops + 2  # only the new weak model's two rules were computed
    assert a["M"] == pytest.approx(b["M"])  # a shifted representation centers to the same one


def test_every_p_w_uses_the_weak_heads_trace_factor_on_d_w():
    """One rule (head_factors): the cell's predictors and the multicap gap selection build
    P_w with the weak head's factor measured on D_w, not on D_s."""
    from molw2s.multicap.capability import Capability, WeakSupervision
    from molw2s.multicap.config import RewardConfig
    from molw2s.multicap.selection import selection_scores
    from molw2s.w2s.features import head_factors

    H_w, H_s, y, split = _task()
    H_w = H_w.copy()
    H_w[split.weak] *= 3.0  # D_w and D_s now differ in scale: the two rules disagree
    row = run_cell(H_w, H_s, y, split, _settings())
    factors = head_factors(H_w, H_s, split.weak, split.strong, "trace")
    assert factors == (row["scale_factor_w"], row["scale_factor_s"])  # exactly the heads' factors

    cap = Capability("c", H_w, H_s, y, split.weak, split.strong, split.test)
    sup = WeakSupervision(labels=y[split.strong] + 0.1, oof=y[split.weak], test=y[split.test])
    heads = {"weak_head": HeadConfig(beta=0.4), "strong_head": HeadConfig(beta=0.2)}
    scores = selection_scores("gap", cap, sup, **heads, reward=RewardConfig())
    s = split.strong
    kw = {"beta_w": 0.4, "beta_s": 0.2, "y": sup.labels, "scale": "trace"}
    on_d_w = predict_w2s(H_w[s], H_s[s], factor_w=factors[0], **kw).gap
    on_d_s = predict_w2s(H_w[s], H_s[s], **kw).gap
    np.testing.assert_allclose(scores, np.abs(on_d_w), rtol=1e-12)
    assert not np.allclose(scores, np.abs(on_d_s))


def test_cell_row_keys_are_the_keys_of_a_row():
    from molw2s.experiment.cell import BASELINES, CELL_ROW_KEYS

    H_w, H_s, y, split = _task()
    row = run_cell(H_w, H_s, y, split, _settings())
    assert set(row) == CELL_ROW_KEYS and set(BASELINES) <= CELL_ROW_KEYS
