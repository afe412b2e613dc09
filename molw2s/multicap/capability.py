"""A capability (one property-prediction task) with its representations and W2S split,
and the weak supervision of it: weak labels on D_s and cross-fitted weak predictions on D_w
(theory.md section 2's weak model, fitted on D_w's gold labels)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from molw2s.errors import DataError
from molw2s.w2s.heads import HeadConfig
from molw2s.w2s.protocol import check_indices, fit_weak_model
from molw2s.w2s.validation import as_matrix, as_vector, same_rows


@dataclass(frozen=True)
class Capability:
    """One task: weak and strong representations of its molecules (rows), gold labels,
    and the row indices of D_w, D_s and the test part (disjoint; D_w may be empty, but
    then no weak model or scorer can be fitted). ``smiles`` (optional) feed the
    diversity measures."""

    name: str
    H_w: np.ndarray
    H_s: np.ndarray
    y: np.ndarray
    weak: np.ndarray
    strong: np.ndarray
    test: np.ndarray
    smiles: Sequence[str] | None = None

    def __post_init__(self) -> None:
        H_w = as_matrix(self.H_w, f"{self.name}: weak representation")
        H_s = as_matrix(self.H_s, f"{self.name}: strong representation")
        y = as_vector(self.y, f"{self.name}: labels")
        n = same_rows(weak_representation=H_w, strong_representation=H_s, labels=y)
        sets = {"D_s": self.strong, "test": self.test}
        if len(self.weak):
            sets["D_w"] = self.weak
        try:
            idx = check_indices(n, **sets)
        except DataError as exc:
            raise DataError(f"capability {self.name}: {exc}") from None
        if len(idx["D_s"]) < 2:
            raise DataError(f"capability {self.name}: D_s has {len(idx['D_s'])} molecules; the student needs >= 2")
        if self.smiles is not None and len(self.smiles) != n:
            raise DataError(f"capability {self.name}: {len(self.smiles)} SMILES for {n} rows")
        for attr, value in (("H_w", H_w), ("H_s", H_s), ("y", y)):
            object.__setattr__(self, attr, value)
        for attr, key in (("strong", "D_s"), ("test", "test")):
            object.__setattr__(self, attr, idx[key])
        object.__setattr__(self, "weak", idx.get("D_w", np.zeros(0, dtype=np.int64)))

    def strong_smiles(self) -> list[str]:
        """The SMILES of D_s (a DataError when the capability has none)."""
        if self.smiles is None:
            raise DataError(f"capability {self.name} has no SMILES; the diversity measures need them")
        return [self.smiles[i] for i in self.strong]


@dataclass(frozen=True)
class WeakSupervision:
    """What the weak model provides: ``labels`` (its predictions on D_s, the weak labels),
    ``oof`` (cross-fitted predictions on D_w: each fold predicted by a weak model fitted on
    the other folds, so their errors are out-of-sample like the weak labels' errors) and
    ``test`` (its predictions on the test part, for Err_w)."""

    labels: np.ndarray
    oof: np.ndarray
    test: np.ndarray


def require_gold(cap: Capability, what: str, minimum: int = 2) -> None:
    """A DataError when D_w has fewer than ``minimum`` gold-labelled molecules."""
    if len(cap.weak) < minimum:
        raise DataError(
            f"capability {cap.name}: {what} needs the gold labels of D_w, but D_w has {len(cap.weak)} "
            f"molecules (at least {minimum} needed)"
        )


def kfold(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """``folds`` disjoint index arrays covering range(n) after one seeded permutation."""
    return [np.sort(part) for part in np.array_split(np.random.default_rng(seed).permutation(n), folds)]


def weak_supervision(cap: Capability, head: HeadConfig, *, folds: int = 5, seed: int = 0) -> WeakSupervision:
    """Fit the weak model on D_w (gold labels): weak labels on D_s, predictions on the test
    part, and ``folds``-fold cross-fitted predictions on D_w."""
    require_gold(cap, "the weak model and the scorer", minimum=2 * folds)
    f_w = fit_weak_model(cap.H_w, cap.y, cap.weak, head)
    oof = np.empty(len(cap.weak))
    for part in kfold(len(cap.weak), folds, seed):
        rest = np.setdiff1d(np.arange(len(cap.weak)), part)
        fold_model = fit_weak_model(cap.H_w, cap.y, cap.weak[rest], head)
        oof[part] = fold_model.predict(cap.H_w[cap.weak[part]])
    return WeakSupervision(labels=f_w.predict(cap.H_w[cap.strong]), oof=oof, test=f_w.predict(cap.H_w[cap.test]))
