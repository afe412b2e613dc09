"""Frozen-feature baselines: ridge and RBF-kernel SVR on fixed features (MolBERT's protocol).

Features are standardised (mean 0, std 1 on the fitting rows; constant columns left at
0) and so are the labels; each hyperparameter value is fitted on the training part and
scored on the validation part, and the best one is refit on train + validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from molw2s.errors import DataError
from molw2s.finetuning.config import BaselineModel, BaselineSettings


@dataclass
class FittedBaseline:
    """A baseline refit on train + validation, with the hyperparameter the validation part chose."""

    model: BaselineModel
    param: str
    value: float
    valid_rmse: float
    estimator: RegressorMixin

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions in the labels' original units."""
        return np.asarray(self.estimator.predict(X), dtype=np.float64)


def make_baseline(model: BaselineModel, value: float) -> RegressorMixin:
    """Scaler + ridge (``alpha=value``) or RBF SVR (``C=value``, gamma ``scale``), on
    standardised labels."""
    regressor = Ridge(alpha=value) if model == "ridge" else SVR(kernel="rbf", C=value, gamma="scale")
    return TransformedTargetRegressor(
        regressor=make_pipeline(StandardScaler(), regressor), transformer=StandardScaler()
    )


def fit_baseline(
    model: BaselineModel,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
    settings: BaselineSettings | None = None,
) -> FittedBaseline:
    """Pick the hyperparameter (ridge alpha, SVR C) with the lowest validation MSE, then
    refit on train + validation."""
    settings = settings or BaselineSettings()
    for name, X in (("training", X_train), ("validation", X_valid)):
        if not np.isfinite(X).all():
            raise DataError(f"the {name} features contain NaN or infinite values")
    if len(y_valid) == 0:
        raise DataError("the baselines pick hyperparameters on the validation part, and this split has none")
    param, grid = ("alpha", settings.ridge_alphas) if model == "ridge" else ("C", settings.svr_cs)
    scores = [
        float(np.mean((make_baseline(model, v).fit(X_train, y_train).predict(X_valid) - y_valid) ** 2)) for v in grid
    ]
    best = int(np.argmin(scores))
    refit = make_baseline(model, grid[best]).fit(np.vstack([X_train, X_valid]), np.concatenate([y_train, y_valid]))
    return FittedBaseline(model, param, float(grid[best]), float(np.sqrt(scores[best])), refit)
