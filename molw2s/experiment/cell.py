"""One W2S cell: the measured protocol and the predictors on one split of one task.

A cell is (representations of the weak and strong model, labels, one seed's D_w / D_s /
test rows, settings). :func:`run_cell` runs the protocol (theory.md section 2, measured
by :mod:`molw2s.w2s.protocol`), then the headline predictor and the sensitivity rules
(section 4) with P_w built on D_s with the weak head's beta and trace factor (fitted on
D_w) and P_s with the strong heads' (fitted on D_s): exactly the features the heads saw
(:func:`molw2s.w2s.features.head_factors`, the one rule every P_w is built with).
``molw2s run`` (through the sweep), ``molw2s w2s`` and the notebooks all call it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from molw2s.data.config import SplitSpec
from molw2s.data.prepare import TaskSplit, split_task_seeds
from molw2s.data.tasks import Task
from molw2s.errors import DataError
from molw2s.experiment.config import CellSettings, RunSettings
from molw2s.theory.baselines import linear_cka
from molw2s.theory.predictor import PredictorConfig, PredictorResult, predict_from_operators
from molw2s.theory.principal import PrincipalOperator, principal_operator
from molw2s.w2s.features import Scale, head_factors
from molw2s.w2s.protocol import W2SResult, run_w2s

#: label-free baselines of the predictor: name -> f(H_w, H_s) on D_s's rows (one row key each)
BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"cka": linear_cka}
#: how many leading sample-covariance eigenvalues (after scaling) a row keeps per representation
SPECTRUM_LENGTH = 64
#: the keys of every row :func:`run_cell` returns with its predictor, derived from the result
#: types and :data:`BASELINES`: a cached cell without one of them is stale
CELL_ROW_KEYS = frozenset(
    [f.name for f in fields(W2SResult)]
    + [f.name for f in fields(PredictorResult) if f.name != "gap"]
    + [*BASELINES, "rule_label", "sensitivity", "spectrum_w", "spectrum_s"]
)


@dataclass(frozen=True)
class CellSplit:
    """Positions (into the task's molecules or the arrays' rows) of D_w, D_s and the test
    set for one seed."""

    seed: int
    weak: np.ndarray
    strong: np.ndarray
    test: np.ndarray
    n_dropped: int = 0  # file rows of the split whose molecule was excluded

    @classmethod
    def from_task_split(cls, parts: TaskSplit) -> CellSplit:
        """The cell's view of a task split: D_w, D_s and the test part."""
        return cls(parts.seed, parts.w2s.weak, parts.w2s.strong, parts.split.test, parts.n_dropped)


def task_cell_splits(
    task: Task,
    settings: CellSettings | RunSettings,
    data_dir: str | Path | None = None,
    *,
    seeds: Sequence[int] | None = None,
    label: str | None = None,
) -> list[CellSplit]:
    """One :class:`CellSplit` per seed of ``settings.splits`` (or of ``seeds``; split files
    map onto the task's molecules, see :func:`molw2s.data.prepare.split_task`), each checked
    against the minimum sizes; errors name ``label`` (default: the task's name). The one
    split path of ``molw2s run``, ``multicap``, ``w2s`` and ``predict``."""
    spec = settings.splits if seeds is None else settings.splits.model_copy(update={"seeds": list(seeds)})
    splits = [CellSplit.from_task_split(p) for p in split_task_seeds(task, spec, data_dir=data_dir)]
    for split in splits:
        check_cell_sizes(split, spec, f"{label or task.name}, seed {split.seed}")
    return splits


def check_cell_sizes(split: CellSplit, spec: SplitSpec, where: str) -> None:
    """A DataError when D_w, D_s or the test part is smaller than ``spec``'s minimum sizes:
    numbers computed from a handful of molecules cannot mean anything."""
    small = [
        f"{part} has {n} molecules (splits.{key} = {minimum})"
        for part, n, key, minimum in (
            ("D_w", len(split.weak), "min_weak", spec.min_weak),
            ("D_s", len(split.strong), "min_strong", spec.min_strong),
            ("the test part", len(split.test), "min_test", spec.min_test),
        )
        if n < minimum
    ]
    if small:
        raise DataError(
            f"{where}: {'; '.join(small)}. Results this small cannot mean anything: use a larger task "
            "or other split fractions, or lower the minimum if you know what you are doing."
        )


def rule_label(config: PredictorConfig) -> str:
    """A short name of a k rule: ``auto(c=3)``, ``flat_tail(c=3)``, ``tau=0.9``,
    ``fixed(k_w=.., k_s=..)``, ``full_rank``."""
    if config.rule == "tau":
        return f"tau={config.tau:g}"
    if config.rule == "fixed":
        return f"fixed(k_w={config.k_w},k_s={config.k_s})"
    if config.rule == "full_rank":
        return "full_rank"
    return f"{config.rule}(c={config.c:g})"


class OperatorCache:
    """P operators per (representation, split seed, k rule, beta, scale factor): the strong
    model's operator is shared by every weak model of a split, so it is computed once."""

    def __init__(self) -> None:
        self._ops: dict[tuple[str, int, str, float, float], PrincipalOperator] = {}

    def get(
        self,
        name: str,
        H: np.ndarray,
        points: np.ndarray,
        seed: int,
        *,
        beta: float,
        rule: PredictorConfig,
        k: int | None,
        scale: Scale,
        factor: float,
    ) -> PrincipalOperator:
        """P of ``H[points]`` with ridge ``beta`` and the heads' scale ``factor``."""
        key = (name, seed, rule_label(rule), beta, factor)
        if key not in self._ops:
            self._ops[key] = principal_operator(
                H[points], beta, rule=rule.rule, tau=rule.tau, k=k, c=rule.c, scale=scale, factor=factor
            )
        return self._ops[key]


def run_cell(
    H_w: np.ndarray,
    H_s: np.ndarray,
    y: np.ndarray,
    split: CellSplit,
    settings: CellSettings,
    *,
    predictor: bool = True,
    operators: OperatorCache | None = None,
    names: tuple[str, str] = ("weak", "strong"),
    progress: bool = False,
) -> dict[str, Any]:
    """Measured quantities, and (with ``predictor``) the headline predictor, CKA and the
    sensitivity predictors of one cell, as one flat JSON-ready row.

    ``names`` identify the two representations in ``operators`` (pass one cache to many
    cells so operators are shared); the row's predictor keys are those of
    :class:`molw2s.theory.predictor.PredictorResult` (``rule_w`` / ``rule_s``: the rules used,
    ``auto`` resolved), plus ``cka``, ``rule_label``, ``sensitivity`` (M, M_F, PredGap_hat,
    k_w, k_s, rule_w, rule_s per rule) and ``spectrum_w`` / ``spectrum_s`` (the first
    :data:`SPECTRUM_LENGTH` sample-covariance eigenvalues of each scaled representation on D_s).
    """
    result = run_w2s(
        H_w,
        H_s,
        y,
        weak_idx=split.weak,
        strong_idx=split.strong,
        test_idx=split.test,
        head=settings.w2s.head,
        weak_head=settings.w2s.weak,
        progress=progress,
    )
    row = result.to_dict()
    if not predictor:
        return row
    operators = operators if operators is not None else OperatorCache()
    labels = np.asarray(y, dtype=np.float64)[split.strong]
    factor_w, factor_s = head_factors(H_w, H_s, split.weak, split.strong, result.scale)
    sensitivity = {}
    for i, rule in enumerate([settings.predictor.primary, *settings.predictor.sensitivity]):
        op_w, op_s = (
            operators.get(
                name, H, split.strong, split.seed, beta=beta, k=k, factor=factor, rule=rule, scale=result.scale
            )
            for name, H, beta, k, factor in (
                (names[0], H_w, result.beta_w, rule.k_w, factor_w),
                (names[1], H_s, result.beta, rule.k_s, factor_s),
            )
        )
        values = predict_from_operators(op_w, op_s, labels, config=rule, scale=result.scale).to_dict()
        if i == 0:
            row.update({k: v for k, v in values.items() if k not in row})
            row["spectrum_w"], row["spectrum_s"] = (op.eigenvalues[:SPECTRUM_LENGTH].tolist() for op in (op_w, op_s))
        keys = ("M", "M_F", "predgap_hat", "k_w", "k_s", "rule_w", "rule_s")
        sensitivity[rule_label(rule)] = {k: values[k] for k in keys}
    row.update({name: f(np.asarray(H_w)[split.strong], np.asarray(H_s)[split.strong]) for name, f in BASELINES.items()})
    row["rule_label"] = rule_label(settings.predictor.primary)
    row["sensitivity"] = sensitivity
    return row
