"""Per-example scores of weak-labelled examples of D_s (larger: the weak label is more
likely wrong) and selection of the examples with the smallest scores.

Methods: ``random``; ``reward`` (a scorer trained on D_w's gold labels,
:class:`RewardModel`); ``gap`` (|entries of P_s (I - P_w) y_hat| on D_s, theory.md
section 4, y_hat the weak labels; P_w with the weak head's trace factor on D_w, as in every
W2S cell: :func:`molw2s.w2s.features.head_factors`); ``disagreement`` (|cross-fitted strong prediction - weak
label|); ``oracle`` (the true |weak label - gold|: an upper bound, not a method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molw2s.errors import DataError
from molw2s.multicap.capability import Capability, WeakSupervision, kfold, require_gold
from molw2s.multicap.config import RewardConfig, SelectionMethod, check_fraction
from molw2s.theory.predictor import PredictorConfig, predict_w2s
from molw2s.w2s.features import head_factors
from molw2s.w2s.heads import HeadConfig


def select_smallest(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Sorted positions of the ceil(fraction * n) smallest ``scores`` (ties: lower position)."""
    check_fraction(fraction)
    scores = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise DataError("selection scores must be finite")
    m = max(1, int(np.ceil(fraction * len(scores) - 1e-9)))
    return np.sort(np.argsort(scores, kind="stable")[:m])


@dataclass(frozen=True)
class StrongPredictions:
    """The strong ridge head fitted on D_s's weak labels: its predictions on D_w (fitted on
    all of D_s) and cross-fitted predictions on D_s (each fold by a head fitted on the others)."""

    on_weak: np.ndarray
    on_strong_oof: np.ndarray


def strong_predictions(
    cap: Capability, weak_labels: np.ndarray, head: HeadConfig, *, folds: int, seed: int
) -> StrongPredictions:
    """See :class:`StrongPredictions`."""
    H = cap.H_s[cap.strong]
    on_weak = head.build().fit(H, weak_labels).predict(cap.H_s[cap.weak]) if len(cap.weak) else np.zeros(0)
    oof = np.empty(len(cap.strong))
    for part in kfold(len(cap.strong), folds, seed):
        rest = np.setdiff1d(np.arange(len(cap.strong)), part)
        oof[part] = head.build().fit(H[rest], weak_labels[rest]).predict(H[part])
    return StrongPredictions(on_weak=on_weak, on_strong_oof=oof)


class RewardModel:
    """Predicts |weak label - gold| of an example from [PCA(strong rep), PCA(weak rep),
    weak prediction, |weak - strong prediction|] (features standardised on the training
    rows). ``model``: ``ridge`` (sklearn Ridge) or ``gbm`` (GradientBoostingRegressor,
    depth 2, seeded)."""

    def __init__(self, config: RewardConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed

    def fit(self, X: np.ndarray, abs_error: np.ndarray) -> RewardModel:
        """Fit on features ``X`` of gold-labelled examples and their weak labels' errors."""
        from sklearn.ensemble import GradientBoostingRegressor
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if len(abs_error) == 0:
            raise DataError("the reward model (scorer) has no gold labels to learn weak-label errors from")
        regressor = (
            Ridge(alpha=self.config.alpha)
            if self.config.model == "ridge"
            else GradientBoostingRegressor(max_depth=2, n_estimators=100, learning_rate=0.05, random_state=self.seed)
        )
        self.pipeline_ = make_pipeline(StandardScaler(), regressor).fit(X, abs_error)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted |weak label - gold| per row of ``X``."""
        pred: np.ndarray = self.pipeline_.predict(X)
        return pred


def reward_features(
    cap: Capability, sup: WeakSupervision, strong: StrongPredictions, n_components: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The scorer's features on D_w (training: cross-fitted weak predictions) and on D_s
    (scoring: the weak labels). PCA of each representation is fitted on D_w and D_s together
    (no labels involved)."""
    from sklearn.decomposition import PCA

    rows = np.concatenate([cap.weak, cap.strong])
    reduced = []
    for H in (cap.H_s, cap.H_w):
        k = max(1, min(n_components, len(rows) - 1, H.shape[1]))
        reduced.append(PCA(n_components=k, random_state=seed).fit_transform(np.asarray(H[rows], dtype=np.float64)))
    pcs = np.hstack(reduced)
    n_w = len(cap.weak)
    on_weak = np.column_stack([pcs[:n_w], sup.oof, np.abs(sup.oof - strong.on_weak)])
    on_strong = np.column_stack([pcs[n_w:], sup.labels, np.abs(sup.labels - strong.on_strong_oof)])
    return on_weak, on_strong


def selection_scores(
    method: SelectionMethod,
    cap: Capability,
    sup: WeakSupervision,
    *,
    weak_head: HeadConfig,
    strong_head: HeadConfig,
    reward: RewardConfig,
    predictor: PredictorConfig | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Scores of D_s's examples by ``method`` (larger: worse weak label)."""
    scores: np.ndarray
    if method == "random":
        scores = np.random.default_rng([seed, len(cap.strong)]).random(len(cap.strong))
        return scores
    if method == "oracle":
        scores = np.abs(sup.labels - cap.y[cap.strong])
        return scores
    if method == "gap":
        predictor = predictor or PredictorConfig()
        factor_w, factor_s = head_factors(cap.H_w, cap.H_s, cap.weak, cap.strong, strong_head.scale)
        result = predict_w2s(
            cap.H_w[cap.strong],
            cap.H_s[cap.strong],
            beta_w=weak_head.beta,
            beta_s=strong_head.beta,
            y=sup.labels,
            rule=predictor.rule,
            tau=predictor.tau,
            k_w=predictor.k_w,
            k_s=predictor.k_s,
            c=predictor.c,
            scale=strong_head.scale,
            factor_w=factor_w,
            factor_s=factor_s,
        )
        assert result.gap is not None
        scores = np.abs(result.gap)
        return scores
    strong = strong_predictions(cap, sup.labels, strong_head, folds=reward.folds, seed=seed)
    if method == "disagreement":
        scores = np.abs(sup.labels - strong.on_strong_oof)
        return scores
    require_gold(cap, "the reward model (scorer)")
    X_w, X_s = reward_features(cap, sup, strong, reward.n_components, seed)
    model = RewardModel(reward, seed).fit(X_w, np.abs(sup.oof - cap.y[cap.weak]))
    return model.predict(X_s)
