"""Linear heads on frozen representations (theory.md section 1).

Both solvers minimise the same objective on centered (optionally trace-scaled) features
Z and standardised labels t:

    (1/n) sum_i (z_i^T theta + b - t_i)^2 + beta * ||theta||^2      (b not penalised)

``RidgeHead`` solves it in closed form, ``SGDHead`` runs the paper's minibatch SGD with
torch weight decay ``wd`` (beta = wd / 2). Predictions are mapped back to the labels'
original units. The sklearn equivalent of ``RidgeHead(beta)`` is
``sklearn.linear_model.Ridge(alpha=n * beta)`` on the same (scaled) features.

The heads are scikit-learn estimators: constructor arguments are stored as given and
validated in ``fit``, so ``sklearn.base.clone``, pipelines and ``GridSearchCV`` over
``beta`` (ridge) or ``weight_decay`` (SGD) work.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.linalg
from pydantic import Field, model_validator
from sklearn.base import BaseEstimator, RegressorMixin

from molw2s.config import Seed, StrictModel
from molw2s.errors import ConfigError, MolW2SError
from molw2s.progress import show_progress
from molw2s.w2s.features import DEFAULT_SCALE, FeatureScaling, Scale, check_scale, fit_scaling
from molw2s.w2s.validation import MAX_BETA, as_matrix, as_vector, check_beta

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Solver = Literal["ridge", "sgd"]

#: default ridge coefficient: the paper's SGD weight decay 0.1 divided by 2, so that the
#: two solvers' defaults solve the same objective
DEFAULT_BETA = 0.05
#: the SGD head reads whether its weights are still finite once per this many epochs
CHECK_EVERY = 100


def ridge_coefficients(Z: np.ndarray, t: np.ndarray, beta: float) -> np.ndarray:
    """argmin_theta (1/n)||Z theta - t||^2 + beta ||theta||^2 for centered Z and t.

    Solves the d x d primal system when d <= n, else the n x n dual one (Cholesky).
    """
    n, d = Z.shape
    if d <= n:
        gram = Z.T @ Z
        gram[np.diag_indices_from(gram)] += n * beta
        theta: np.ndarray = scipy.linalg.solve(gram, Z.T @ t, assume_a="pos")
        return theta
    kernel = Z @ Z.T
    kernel[np.diag_indices_from(kernel)] += n * beta
    dual: np.ndarray = Z.T @ scipy.linalg.solve(kernel, t, assume_a="pos")
    return dual


class LinearHead(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """A linear head, a scikit-learn regressor (``fit`` / ``predict`` / ``score``).

    After ``fit``: ``coef_`` and ``intercept_`` in original units (``predict(H) = H @
    coef_ + intercept_``), ``scaling_`` (training means and scale factor), ``label_mean_``
    and ``label_std_`` (the label standardisation used for fitting).
    """

    scale: Scale
    coef_: np.ndarray
    intercept_: float
    scaling_: FeatureScaling
    label_mean_: float
    label_std_: float

    @property
    def beta(self) -> float:
        """The ridge coefficient of the objective this head minimises."""
        raise NotImplementedError

    @property
    def solver(self) -> Solver:
        """``"ridge"`` or ``"sgd"``."""
        raise NotImplementedError

    @abstractmethod
    def _validate_params(self) -> None:
        """Check the constructor arguments (ConfigError naming the bad one)."""

    @abstractmethod
    def _solve(self, Z: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
        """(theta, b) minimising the objective on centered features Z, labels t."""

    def fit(
        self,
        H: np.ndarray,
        y: np.ndarray,
        *,
        label_mean: float | None = None,
        label_std: float | None = None,
    ) -> LinearHead:
        """Fit on representations ``H`` (n, d) and labels ``y`` (n,).

        Labels are standardised with ``label_mean`` / ``label_std`` when given (the W2S
        protocol passes D_w's), else with their own mean and std; a constant label
        vector is standardised with std 1.
        """
        check_scale(self.scale)
        self._validate_params()
        H = as_matrix(H, "representation", min_rows=2)
        y = as_vector(y, "labels", n_rows=H.shape[0])
        mu = float(y.mean()) if label_mean is None else float(label_mean)
        sd = float(y.std()) if label_std is None else float(label_std)
        if not np.isfinite(mu) or not np.isfinite(sd) or sd < 0:
            raise ConfigError(f"label standardisation needs a finite mean and std >= 0, got {mu}, {sd}")
        if sd == 0.0:
            log.info("labels are constant; standardising with std 1")
            sd = 1.0
        scaling = fit_scaling(H, self.scale)
        theta, b = self._solve(scaling.transform(H), (y - mu) / sd)
        self.scaling_, self.label_mean_, self.label_std_ = scaling, mu, sd
        self.coef_ = sd * theta / scaling.factor
        self.intercept_ = float(mu + sd * b - scaling.mean @ self.coef_)
        return self

    def predict(self, H: np.ndarray) -> np.ndarray:
        """Predictions in the labels' original units."""
        if not hasattr(self, "coef_"):
            raise MolW2SError(f"{type(self).__name__} is not fitted yet; call fit(H, y) first")
        H = as_matrix(H, "representation")
        if H.shape[1] != self.coef_.shape[0]:
            raise MolW2SError(
                f"representation has {H.shape[1]} features but the head was fitted on {self.coef_.shape[0]}"
            )
        pred: np.ndarray = H @ self.coef_ + self.intercept_
        return pred


class RidgeHead(LinearHead):
    """Closed-form ridge: exact, fast; the default for sweeps."""

    beta: float = DEFAULT_BETA  # a constructor parameter here (a property of the base class)

    def __init__(self, beta: float = DEFAULT_BETA, scale: Scale = DEFAULT_SCALE) -> None:
        self.beta = beta
        self.scale = scale

    def _validate_params(self) -> None:
        check_beta(self.beta)

    @property
    def solver(self) -> Solver:
        return "ridge"

    def _solve(self, Z: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
        b = float(t.mean())
        return ridge_coefficients(Z, t - b, float(self.beta)), b


class SGDHead(LinearHead):
    """The paper's procedure: minibatch SGD on the MSE with torch weight decay.

    Zero initialisation; a seeded shuffle every epoch; weight decay on the weights only
    (the bias is unpenalised, as in the ridge objective); float32.
    """

    def __init__(
        self,
        weight_decay: float = 0.1,
        lr: float = 1e-3,
        batch_size: int = 1024,
        epochs: int = 2000,
        seed: int = 0,
        device: str = "cpu",
        scale: Scale = DEFAULT_SCALE,
        progress: bool = False,
    ) -> None:
        self.weight_decay = weight_decay
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.seed = seed
        self.device = device
        self.scale = scale
        self.progress = progress

    @property
    def beta(self) -> float:
        return float(self.weight_decay) / 2.0

    def _validate_params(self) -> None:
        check_beta(self.weight_decay, "weight_decay", allow_zero=True)
        check_beta(self.lr, "lr")
        if self.batch_size < 1 or self.epochs < 1:
            raise ConfigError(f"batch_size and epochs must be >= 1, got {self.batch_size} and {self.epochs}")

    @property
    def solver(self) -> Solver:
        return "sgd"

    def _solve(self, Z: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
        import torch
        from tqdm.auto import trange

        device = torch.device(self.device)
        # the shuffles are drawn on the device (on the CPU: the very permutations of a CPU run)
        gen = torch.Generator(device=device).manual_seed(int(self.seed))
        X = _to_device(Z, device)
        Y = _to_device(t, device)
        w = torch.zeros(X.shape[1], device=device, requires_grad=True)
        b = torch.zeros((), device=device, requires_grad=True)
        opt = torch.optim.SGD(
            [{"params": [w], "weight_decay": self.weight_decay}, {"params": [b], "weight_decay": 0.0}], lr=self.lr
        )
        n, epochs = X.shape[0], int(self.epochs)
        # the first epoch that ended with non-finite weights, kept on the device and read
        # every CHECK_EVERY epochs, so the loop does not wait for the device once per epoch
        first_bad = torch.full((), epochs, dtype=torch.long, device=device)
        for epoch in trange(
            epochs, desc="sgd head", unit="epoch", disable=not show_progress(self.progress), leave=False
        ):
            order = torch.randperm(n, generator=gen, device=device)
            for start in range(0, n, int(self.batch_size)):
                idx = order[start : start + int(self.batch_size)]
                opt.zero_grad(set_to_none=True)
                loss = torch.mean((X[idx] @ w + b - Y[idx]) ** 2)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
            first_bad = torch.where(torch.isfinite(w).all() | (first_bad < epochs), first_bad, epoch)
            if (epoch + 1) % CHECK_EVERY == 0 or epoch + 1 == epochs:
                bad = int(first_bad)
                if bad < epochs:
                    raise MolW2SError(f"SGD diverged at epoch {bad} (lr={self.lr}); lower lr or use scale='trace'")
        return w.detach().cpu().double().numpy(), float(b.detach().cpu())


def _to_device(values: np.ndarray, device: torch.device) -> torch.Tensor:
    """``values`` as float32 on ``device``, copied from pinned memory to a GPU."""
    import torch

    host = torch.as_tensor(values, dtype=torch.float32)
    if device.type == "cuda":
        host = host.pin_memory()
    return host.to(device, non_blocking=True)


def make_head(solver: Solver, **kwargs: object) -> LinearHead:
    """A head by solver name. For ``"sgd"``, ``beta=B`` may be given instead of
    ``weight_decay=2*B``."""
    if solver == "ridge":
        return RidgeHead(**kwargs)  # type: ignore[arg-type]
    if solver == "sgd":
        if "beta" in kwargs:
            if "weight_decay" in kwargs:
                raise ConfigError("give either beta or weight_decay for the sgd head, not both")
            kwargs["weight_decay"] = 2.0 * float(kwargs.pop("beta"))  # type: ignore[arg-type]
        return SGDHead(**kwargs)  # type: ignore[arg-type]
    raise ConfigError(f"solver must be 'ridge' or 'sgd', got {solver!r}")


class HeadConfig(StrictModel):
    """Settings of one linear head. ``beta`` is the ridge coefficient for both solvers
    (SGD runs with weight decay 2 * beta); the SGD-only keys are ignored by ridge.
    ``scale`` defaults to ``trace`` so that one beta means the same regularisation for a
    768-d embedding and a 2048-bit fingerprint (docs/theory_choices.md)."""

    solver: Solver = "ridge"
    beta: float = Field(DEFAULT_BETA, gt=0, le=MAX_BETA)
    scale: Scale = DEFAULT_SCALE
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(1024, ge=1)
    epochs: int = Field(2000, ge=1)
    seed: Seed = 0
    device: str = "cpu"

    @model_validator(mode="after")
    def _sgd_can_converge(self) -> HeadConfig:
        if self.solver == "sgd" and self.lr * 2 * self.beta >= 2:
            raise ValueError(
                f"lr={self.lr:g} with beta={self.beta:g}: each SGD step multiplies the weights by "
                f"1 - lr * 2 * beta = {1 - self.lr * 2 * self.beta:g}, so the sgd head cannot converge; "
                "lower lr or beta (lr * beta < 1)"
            )
        return self

    def build(self, *, progress: bool = False) -> LinearHead:
        """A fresh, unfitted head with these settings."""
        if self.solver == "ridge":
            return RidgeHead(beta=self.beta, scale=self.scale)
        return make_head(
            "sgd",
            beta=self.beta,
            lr=self.lr,
            batch_size=self.batch_size,
            epochs=self.epochs,
            seed=self.seed,
            device=self.device,
            scale=self.scale,
            progress=progress,
        )
