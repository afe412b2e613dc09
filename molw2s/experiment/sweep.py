"""The W2S sweep: one cell per (task, split seed, weak model), each cached on disk.

A cell runs the protocol (theory.md section 2) with the configured heads, the headline
predictor (section 4) and the other k rules for the sensitivity table. Its result is a
JSON file named by a content hash of everything that produced it (the two
representations' bytes, labels, indices and settings), written atomically: a rerun
skips finished cells, a killed sweep resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from molw2s.experiment.config import ExperimentConfig, SplitSettings, W2SSettings
from molw2s.io import content_hash, write_json_atomic
from molw2s.theory.baselines import linear_cka
from molw2s.theory.predictor import PredictorConfig, predict_from_operators
from molw2s.theory.principal import PrincipalOperator, principal_operator
from molw2s.w2s.features import fit_scaling
from molw2s.w2s.protocol import run_w2s

CELL_VERSION = "w2s-cell-v1"


@dataclass(frozen=True)
class SeedSplit:
    """Positions (into the task's molecules) of D_w, D_s and the test set for one seed."""

    seed: int
    weak: np.ndarray
    strong: np.ndarray
    test: np.ndarray
    n_dropped: int = 0  # file rows of the split whose molecule was excluded


def rule_label(config: PredictorConfig) -> str:
    """A short name of a k rule: ``flat_tail(c=3)``, ``tau=0.9``, ``fixed(k_w=.., k_s=..)``."""
    if config.rule == "tau":
        return f"tau={config.tau:g}"
    if config.rule == "fixed":
        return f"fixed(k_w={config.k_w},k_s={config.k_s})"
    return f"flat_tail(c={config.c:g})"


def make_splits(task: Any, settings: SplitSettings, w2s: W2SSettings, data_dir: Path | None) -> list[SeedSplit]:
    """Train/test split of ``task`` for every seed, then D_w / D_s from its training part
    (:func:`molw2s.data.prepare.split_task`, so split files map onto the task's molecules)."""
    from molw2s.data.config import SplitSpec
    from molw2s.data.prepare import split_task

    out = []
    for seed in settings.seeds:
        spec = SplitSpec(method=settings.method, frac=settings.frac, seed=seed, path=settings.path,
                         n_weak=w2s.n_weak, n_strong=w2s.n_strong)
        parts = split_task(task, spec, data_dir=data_dir)
        dropped = sum(len(v) for v in parts.dropped.values())
        out.append(SeedSplit(seed, parts.w2s.weak, parts.w2s.strong, parts.split.test, dropped))
    return out


def array_digest(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes (identity of a representation)."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()[:20]


class OperatorCache:
    """P operators per (representation, split seed, k rule): the strong model's operator
    is shared by every weak model of a split, so it is computed once."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.head = config.w2s.head
        self._ops: dict[tuple[str, int, str], PrincipalOperator] = {}

    def get(self, name: str, H: np.ndarray, train: np.ndarray, points: np.ndarray, seed: int,
            beta: float, rule: PredictorConfig, k: int | None) -> PrincipalOperator:
        """P of ``H[points]`` scaled with the factor a head fitted on ``H[train]`` would use."""
        key = (name, seed, rule_label(rule))
        if key not in self._ops:
            factor = fit_scaling(H[train], self.head.scale).factor
            self._ops[key] = principal_operator(H[points], beta, rule=rule.rule, tau=rule.tau, k=k, c=rule.c,
                                                scale=self.head.scale, factor=factor)
        return self._ops[key]


def run_cell(
    weak: str,
    representations: Mapping[str, np.ndarray],
    y: np.ndarray,
    split: SeedSplit,
    config: ExperimentConfig,
    operators: OperatorCache,
) -> dict[str, Any]:
    """Measured quantities, the headline predictor, CKA and the sensitivity predictors of one cell.

    P_w is built on D_s with the trace factor of the weak head (fitted on D_w), P_s with
    that of the strong heads (fitted on D_s): exactly the features the heads saw.
    """
    H_w, H_s = representations[weak], representations[config.strong]
    result = run_w2s(H_w, H_s, y, weak_idx=split.weak, strong_idx=split.strong, test_idx=split.test,
                     head=config.w2s.head)
    row = result.to_dict()
    sensitivity = {}
    for i, rule in enumerate([config.predictor.primary, *config.predictor.sensitivity]):
        op_w = operators.get(weak, H_w, split.weak, split.strong, split.seed, result.beta_w, rule, rule.k_w)
        op_s = operators.get(config.strong, H_s, split.strong, split.strong, split.seed, result.beta, rule, rule.k_s)
        pred = predict_from_operators(op_w, op_s, y[split.strong], config=rule, scale=config.w2s.head.scale)
        values = pred.to_dict()
        if i == 0:
            row.update({k: v for k, v in values.items() if k not in row})
        sensitivity[rule_label(rule)] = {k: values[k] for k in ("M", "M_F", "predgap_hat", "k_w", "k_s")}
    row["cka"] = linear_cka(H_w[split.strong], H_s[split.strong])
    row["rule_label"] = rule_label(config.predictor.primary)
    row["sensitivity"] = sensitivity
    return row


def cell_key(
    task: str, weak: str, strong: str, digests: tuple[str, str, str], split: SeedSplit, config: ExperimentConfig
) -> str:
    """Content hash of everything a cell's numbers depend on."""
    return content_hash(
        CELL_VERSION, task, weak, strong, digests,
        split.weak.tolist(), split.strong.tolist(), split.test.tolist(),
        config.w2s.head.model_dump(), config.predictor.model_dump(),
    )


def sweep_task(
    task_name: str,
    y: np.ndarray,
    representations: Mapping[str, np.ndarray],
    splits: Sequence[SeedSplit],
    config: ExperimentConfig,
    cells_dir: Path,
    *,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Every (seed, weak model) cell of one task; finished cells are read back, not rerun."""
    from tqdm.auto import tqdm

    digests = {name: array_digest(H) for name, H in representations.items()}
    y_digest = array_digest(np.asarray(y, dtype=np.float64))
    jobs = [(split, weak) for split in splits for weak in config.weak]
    rows = []
    operators = OperatorCache(config)
    bar = tqdm(jobs, desc=f"W2S cells {task_name}", unit="cell", disable=not progress, leave=False)
    for split, weak in bar:
        key = cell_key(task_name, weak, config.strong, (digests[weak], digests[config.strong], y_digest), split, config)
        path = cells_dir / f"{task_name}.{weak}.seed{split.seed}.{key}.json"
        if path.is_file():
            row = json.loads(path.read_text())
        else:
            row = run_cell(weak, representations, y, split, config, operators)
            row.update(task=task_name, weak=weak, strong=config.strong, seed=split.seed,
                       n_split_rows_dropped=split.n_dropped, cell=key)
            write_json_atomic(path, row)
        rows.append(row)
    return rows
