"""The multi-capability library (molw2s.multicap) on small synthetic problems."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from molw2s.errors import ConfigError, DataError
from molw2s.multicap.capability import Capability, WeakSupervision, weak_supervision
from molw2s.multicap.config import BootstrapConfig, RewardConfig, SelectionConfig, StudentConfig
from molw2s.multicap.seed_experiments import bootstrapping, independence, selection, selection_differences
from molw2s.multicap.selection import RewardModel, select_smallest, selection_scores
from molw2s.multicap.students import make_student
from molw2s.multicap.summary import seed_interval
from molw2s.w2s.heads import HeadConfig

RIDGE = StudentConfig(kind="ridge")
SHARED = StudentConfig(kind="shared", rank=4, max_iter=200, stage2_max_iter=200)


def noisy_problem(seed: int, n_caps: int = 2, d: int = 8) -> tuple[list[Capability], dict[str, WeakSupervision]]:
    """Capabilities y = X beta whose weak labels carry known per-example noise: std 3 in one
    half of the molecules and 0.3 in the other, the half visible as feature 0 (+-3)."""
    rng = np.random.default_rng(seed)
    caps, sups = [], {}
    for c in range(n_caps):
        n = 900
        X = rng.standard_normal((n, d))
        noisy = rng.random(n) < 0.5
        X[:, 0] += np.where(noisy, 3.0, -3.0)
        y = X @ rng.standard_normal(d)
        labels = y + np.where(noisy, 3.0, 0.3) * rng.standard_normal(n)
        H_w = X[:, :4] + 0.5 * rng.standard_normal((n, 4))
        cap = Capability(f"cap{c}", H_w, X, y, np.arange(300), np.arange(300, 700), np.arange(700, n))
        caps.append(cap)
        sups[cap.name] = WeakSupervision(labels=labels[cap.strong], oof=labels[cap.weak], test=labels[cap.test])
    return caps, sups


def linear_problem(seed: int, n_caps: int = 2, d: int = 6, noise: float = 0.5) -> list[Capability]:
    rng = np.random.default_rng(seed)
    caps = []
    for c in range(n_caps):
        X = rng.standard_normal((200, d))
        y = X @ rng.standard_normal(d) + noise * rng.standard_normal(200)
        H_w = X[:, :3]
        caps.append(Capability(f"t{c}", H_w, X, y, np.arange(60), np.arange(60, 160), np.arange(160, 200)))
    return caps


@pytest.mark.parametrize("seed", [0, 1])
def test_reward_selection_beats_random_and_oracle_beats_both(seed):
    caps, sups = noisy_problem(seed)
    config = SelectionConfig(methods=["random", "reward", "oracle"], fractions=[0.4])
    records = selection(caps, sups, RIDGE, config, weak_head=HeadConfig(), strong_head=HeadConfig(), seed=seed)
    frame = pd.DataFrame(records)
    only = frame[frame["training"] == "selection only"].groupby("method")["err_w2s"].mean()
    assert only["reward"] < only["random"]
    assert only["oracle"] < only["reward"]
    picked = frame[frame["training"] == "selection only"].groupby("method")["selected_error"].mean()
    assert picked["oracle"] < picked["reward"] < picked["random"]


def test_two_stage_equals_one_stage_when_everything_is_selected():
    caps = linear_problem(0)
    data = {c.name: (c.strong, c.y[c.strong] + 0.1) for c in caps}
    for config, tol in ((RIDGE, 1e-10), (SHARED, 1e-4)):
        stage1 = make_student(config, caps).fit(data)
        stage2 = stage1.refine(data)
        for c in caps:
            a, b = stage1.predict(c.name, c.test), stage2.predict(c.name, c.test)
            np.testing.assert_allclose(b, a, atol=tol * np.abs(a).max())


def test_two_stage_on_a_subset_moves_between_all_and_subset_only():
    caps = linear_problem(1, n_caps=1)
    c = caps[0]
    full = {c.name: (c.strong, c.y[c.strong])}
    sub = {c.name: (c.strong[:30], c.y[c.strong[:30]] + 5.0)}
    stage1 = make_student(RIDGE, caps).fit(full)
    two, only = stage1.refine(sub), make_student(RIDGE, caps).fit(sub)
    p1, p2, p3 = (m.predict(c.name, c.test).mean() for m in (stage1, two, only))
    assert p1 < p2 < p3


def test_bootstrapping_is_a_fixed_point_on_a_noiseless_linear_problem():
    caps = linear_problem(2, noise=0.0)
    sups = {c.name: WeakSupervision(labels=c.y[c.strong], oof=c.y[c.weak], test=c.y[c.test]) for c in caps}
    records = bootstrapping(caps, sups, StudentConfig(kind="ridge", beta=1e-12), BootstrapConfig(rounds=3))
    frame = pd.DataFrame(records)
    assert len(frame) == 2 * 4
    assert frame["label_change"].max() < 1e-6
    for _, group in frame.groupby("capability"):
        np.testing.assert_allclose(group["pred_var"], group["pred_var"].iloc[0], rtol=1e-8)


def test_ridge_student_joint_equals_single_shared_student_differs():
    caps = linear_problem(3, n_caps=3)
    sups = {c.name: weak_supervision(c, HeadConfig(), folds=3) for c in caps}
    ridge = pd.DataFrame(independence(caps, sups, RIDGE))
    assert set(ridge["trained_with"]) == {"alone", "t0", "t1", "t2", "all"}
    for _, group in ridge.groupby("capability"):
        np.testing.assert_allclose(group["err_w2s"], group["err_w2s"].iloc[0], rtol=1e-12)
    shared = pd.DataFrame(independence(caps, sups, SHARED))
    spread = shared.groupby("capability")["err_w2s"].agg(np.ptp)
    assert (spread > 0).all()


def test_shared_student_is_deterministic():
    caps = linear_problem(4)
    data = {c.name: (c.strong, c.y[c.strong]) for c in caps}
    a, b = make_student(SHARED, caps).fit(data), make_student(SHARED, caps).fit(data)
    for c in caps:
        np.testing.assert_array_equal(a.predict(c.name, c.test), b.predict(c.name, c.test))


def test_capabilities_with_no_molecules_in_common_train_jointly():
    rng = np.random.default_rng(5)
    a = Capability(
        "a",
        rng.random((80, 3)),
        rng.random((80, 5)),
        rng.random(80),
        np.arange(20),
        np.arange(20, 60),
        np.arange(60, 80),
    )
    b = Capability(
        "b",
        rng.random((50, 3)),
        rng.random((50, 5)),
        rng.random(50),
        np.arange(20),
        np.arange(20, 40),
        np.arange(40, 50),
    )
    sups = {c.name: weak_supervision(c, HeadConfig(), folds=2) for c in (a, b)}
    frame = pd.DataFrame(
        selection(
            [a, b], sups, SHARED, SelectionConfig(fractions=[0.5]), weak_head=HeadConfig(), strong_head=HeadConfig()
        )
    )
    assert np.isfinite(frame["err_w2s"]).all()
    assert {"random", "reward", "gap", "disagreement", "oracle"} <= set(frame["method"])
    diffs = selection_differences(frame.assign(seed=0))
    assert np.isfinite(diffs["diff"]).all()


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_selection_fraction_outside_0_1_is_an_error(fraction):
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        select_smallest(np.arange(10.0), fraction)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        SelectionConfig(fractions=[0.5, fraction])


def test_selection_keeps_the_smallest_scores():
    assert select_smallest(np.array([5.0, 1.0, 3.0, 0.0]), 0.5).tolist() == [1, 3]
    assert select_smallest(np.array([5.0, 1.0, 3.0]), 1.0).tolist() == [0, 1, 2]


def test_scorer_without_gold_labels_is_an_error():
    rng = np.random.default_rng(6)
    cap = Capability(
        "nogold",
        rng.random((40, 3)),
        rng.random((40, 4)),
        rng.random(40),
        np.zeros(0, dtype=int),
        np.arange(30),
        np.arange(30, 40),
    )
    sup = WeakSupervision(labels=rng.random(30), oof=np.zeros(0), test=rng.random(10))
    with pytest.raises(DataError, match="nogold.*gold labels of D_w.*0 molecules"):
        selection_scores(
            "reward", cap, sup, weak_head=HeadConfig(), strong_head=HeadConfig(), reward=RewardConfig(folds=2)
        )
    with pytest.raises(DataError, match="gold labels"):
        weak_supervision(cap, HeadConfig())
    with pytest.raises(DataError, match="no gold labels"):
        RewardModel(RewardConfig()).fit(np.zeros((0, 3)), np.zeros(0))


def test_too_small_capability_is_an_error():
    rng = np.random.default_rng(7)
    with pytest.raises(DataError, match="capability tiny: D_s has 1"):
        Capability(
            "tiny",
            rng.random((10, 2)),
            rng.random((10, 2)),
            rng.random(10),
            np.arange(5),
            np.array([5]),
            np.arange(6, 10),
        )


def test_seed_interval():
    mean, low, high = seed_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and low < 2.0 < high
    assert np.isnan(seed_interval([1.0])[1])
