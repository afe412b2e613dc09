"""Strong students for several capabilities at once.

A student is built for a set of capabilities and trains on and predicts *rows* of them
(molecules, as indices into each capability), so the experiments never depend on what the
student reads: the frozen students read the strong representations of those rows, the
finetuned one their SMILES.

- :class:`SharedStudent` (``kind: shared``): f_c(h) = w_c^T (A z) + b_c with z the scaled,
  centered representation and A (r x d) shared by all capabilities. Fitted by full-batch
  L-BFGS (torch, float64, seeded initialisation: deterministic on the CPU) on

      mean over capabilities c of  mean over c's rows (f_c(h) - t)^2  +  beta (||A||^2 + ||W||^2)

  with labels t standardised per capability on its own training labels; each molecule
  contributes only to its own capability's output (the masked MSE).
- :class:`RidgeStudent` (``kind: ridge``): one closed-form :class:`RidgeHead` per
  capability. Nothing is shared, so training capabilities jointly or one at a time gives
  the same model: the control of the independence experiment.
- :class:`FinetuneStudent` (``kind: finetune``, :mod:`molw2s.multicap.finetune_student`):
  the strong encoder finetuned end to end with one output per capability.

Two-stage training (``refine``): stage 2 minimises the stage-1 objective on the selected
subset plus ``prox * ||theta - theta_1||^2``, starting from the stage-1 parameters theta_1.
When the selection is everything, theta_1 is already optimal for that objective, so stage
2 leaves the model unchanged (exactly for ridge, to optimiser tolerance for shared; not
for the finetuned student, whose stage 1 is early-stopped SGD rather than an optimum).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from molw2s.errors import DataError
from molw2s.multicap.capability import Capability
from molw2s.multicap.config import StudentConfig
from molw2s.multicap.finetune_student import FinetuneSetup, FinetuneStudent
from molw2s.multicap.labelled import Labelled, check_data
from molw2s.w2s.features import FeatureScaling, fit_scaling
from molw2s.w2s.heads import RidgeHead, ridge_coefficients


class Student(Protocol):
    """A multi-capability student: ``fit`` (stage 1), ``refine`` (stage 2, a new student)."""

    def fit(self, data: Labelled) -> Student:
        """Fit on every capability of ``data``; returns self."""
        ...

    def refine(self, data: Labelled) -> Student:
        """A copy trained further on ``data`` (stage 2) from this student's parameters."""
        ...

    def predict(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Predictions for rows ``rows`` of capability ``name`` in its labels' units."""
        ...


def make_student(config: StudentConfig, caps: Sequence[Capability], finetune: FinetuneSetup | None = None) -> Student:
    """A fresh, unfitted student of ``config.kind`` for capabilities ``caps`` (``finetune``:
    the checkpoint and cache of the ``finetune`` kind, required by it)."""
    if config.kind == "finetune":
        if finetune is None:
            raise DataError("the finetune student needs a strong checkpoint (a FinetuneSetup)")
        return FinetuneStudent(config, caps, finetune)
    features = {c.name: c.H_s for c in caps}
    return SharedStudent(config, features) if config.kind == "shared" else RidgeStudent(config, features)


def _matrices(features: Mapping[str, np.ndarray], data: Labelled) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The representations of ``data``'s rows with their labels, per capability."""
    check_data(data)
    unknown = sorted(set(data) - set(features))
    if unknown:
        raise DataError(f"the student was not built for capabilities {unknown}")
    return {name: (features[name][rows], np.asarray(y, dtype=np.float64)) for name, (rows, y) in data.items()}


class RidgeStudent:
    """Independent ridge heads, one per capability (closed form)."""

    def __init__(self, config: StudentConfig, features: Mapping[str, np.ndarray]) -> None:
        self.config = config
        self.features = features
        self.heads: dict[str, RidgeHead] = {}

    def fit(self, data: Labelled) -> RidgeStudent:
        """One ridge head per capability on its own rows (labels standardised on their own)."""
        self.heads = {
            name: RidgeHead(beta=self.config.beta, scale=self.config.scale).fit(H, y)
            for name, (H, y) in _matrices(self.features, data).items()
        }
        return self

    def refine(self, data: Labelled) -> RidgeStudent:
        """Stage 2: per capability in ``data``, argmin (1/m)||Z theta + b - t||^2 +
        beta ||theta||^2 + prox ||theta - theta_1||^2 in the stage-1 scaled units."""
        out = copy.copy(self)
        out.heads = copy.deepcopy(self.heads)
        beta, prox = self.config.beta, self.config.prox
        for name, (H, y) in _matrices(self.features, data).items():
            head = out.heads[name]
            scaling, mu, sd = head.scaling_, head.label_mean_, head.label_std_
            theta1 = head.coef_ * scaling.factor / sd
            Z, t = scaling.transform(H), (np.asarray(y, dtype=np.float64) - mu) / sd
            z_mean, t_mean = Z.mean(axis=0), float(t.mean())
            Zc, tc = Z - z_mean, t - t_mean
            # theta = (prox / (beta + prox)) theta_1 + u, u a ridge solution with penalty beta + prox
            pulled = prox / (beta + prox) * theta1
            theta = pulled + ridge_coefficients(Zc, tc - Zc @ pulled, beta + prox)
            b = t_mean - float(z_mean @ theta)
            head.coef_ = sd * theta / scaling.factor
            head.intercept_ = float(mu + sd * b - scaling.mean @ head.coef_)
        return out

    def predict(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Capability ``name``'s head applied to the representations of ``rows``."""
        return self.heads[name].predict(self.features[name][rows])


class SharedStudent:
    """A shared low-rank layer A and one linear output per capability (see the module doc)."""

    def __init__(self, config: StudentConfig, features: Mapping[str, np.ndarray]) -> None:
        self.config = config
        self.features = features
        self.names: list[str] = []
        self.scaling: FeatureScaling | None = None
        self.labels: dict[str, tuple[float, float]] = {}
        self.params: dict[str, np.ndarray] = {}

    def fit(self, data: Labelled) -> SharedStudent:
        """Initialise (seeded) and train on every capability of ``data`` jointly."""
        data = _matrices(self.features, data)
        self.names = list(data)
        self.scaling = fit_scaling(
            np.vstack([np.asarray(H, dtype=np.float64) for H, _ in data.values()]), self.config.scale
        )
        self.labels = {}
        for name, (_, y) in data.items():
            sd = float(np.std(y))
            self.labels[name] = (float(np.mean(y)), sd if sd > 0 else 1.0)
        d = self.scaling.mean.shape[0]
        r = min(self.config.rank, d)
        rng = np.random.default_rng(self.config.seed)
        self.params = {
            "A": rng.standard_normal((r, d)) / np.sqrt(d),
            "W": 0.01 * rng.standard_normal((len(self.names), r)),
            "b": np.zeros(len(self.names)),
        }
        self._train(data, self.config.max_iter, anchor=None)
        return self

    def refine(self, data: Labelled) -> SharedStudent:
        """Stage 2: continue from the stage-1 parameters on ``data``, pulled towards them."""
        matrices = _matrices(self.features, data)
        unknown = sorted(set(data) - set(self.names))
        if unknown:
            raise DataError(f"stage 2 on capabilities {unknown} that stage 1 did not train")
        out = copy.copy(self)
        out._train(matrices, self.config.stage2_max_iter, anchor={k: v.copy() for k, v in self.params.items()})
        return out

    def predict(self, name: str, rows: np.ndarray) -> np.ndarray:
        """f_name(h) for the representations h of ``rows``, in the capability's label units."""
        if self.scaling is None:
            raise DataError("the shared student is not fitted yet")
        c = self.names.index(name)
        Z = self.scaling.transform(self.features[name][rows])
        t = Z @ self.params["A"].T @ self.params["W"][c] + self.params["b"][c]
        mu, sd = self.labels[name]
        pred: np.ndarray = mu + sd * t
        return pred

    def _train(
        self, data: Mapping[str, tuple[np.ndarray, np.ndarray]], max_iter: int, anchor: dict[str, np.ndarray] | None
    ) -> None:
        import torch

        assert self.scaling is not None
        rows = []
        for name, (H, y) in data.items():
            mu, sd = self.labels[name]
            Z = torch.as_tensor(self.scaling.transform(H), dtype=torch.float64)
            t = torch.as_tensor((np.asarray(y, dtype=np.float64) - mu) / sd, dtype=torch.float64)
            rows.append((self.names.index(name), Z, t))
        params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in self.params.items()}
        anchors = None if anchor is None else {k: torch.as_tensor(v, dtype=torch.float64) for k, v in anchor.items()}
        beta, prox = self.config.beta, self.config.prox
        opt = torch.optim.LBFGS(
            list(params.values()),
            lr=1.0,
            max_iter=max_iter,
            history_size=20,
            tolerance_grad=1e-9,
            tolerance_change=1e-14,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            A, W, b = params["A"], params["W"], params["b"]
            fits = [torch.mean((Z @ (A.T @ W[c]) + b[c] - t) ** 2) for c, Z, t in rows]
            loss = torch.stack(fits).mean() + beta * (torch.sum(A**2) + torch.sum(W**2))
            if anchors is not None:
                loss = loss + prox * sum(torch.sum((params[k] - anchors[k]) ** 2) for k in params)
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a small problem: more threads only add synchronisation (25x slower on a busy CPU)
        try:
            opt.step(closure)  # type: ignore[no-untyped-call]
        finally:
            torch.set_num_threads(threads)
        self.params = {k: v.detach().numpy().copy() for k, v in params.items()}
