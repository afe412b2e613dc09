"""The finetuned strong student (``w2s.student: finetune``): the W2S protocol of theory.md
section 2 with f_w2s and f_sc the strong encoder finetuned end to end instead of linear heads.

The weak teacher stays the linear head f_w fitted on D_w (exactly the one of the linear
protocol). D_s is cut once per seed into a fitting part and a validation part
(``w2s.student_valid_frac``) used for early stopping; each student is validated on the
labels it is trained on (weak labels for f_w2s, gold labels for f_sc), so the W2S student
never sees a gold label. Measured on the test part like the linear protocol, reported
under ``ft_*`` keys beside the linear student's.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from molw2s.data.tasks import Task
from molw2s.encoders.refs import model_transformer
from molw2s.encoders.spec import ModelRef
from molw2s.encoders.transformer import TransformerFiles
from molw2s.experiment.cell import CellSplit
from molw2s.experiment.config import CellSettings
from molw2s.finetuning.holdout import validation_cut
from molw2s.finetuning.trainer import LabelledSmiles, finetune_regressor
from molw2s.io import CachedResult, content_hash, safe_filename
from molw2s.w2s.metrics import mse, pgr, regression_metrics
from molw2s.w2s.protocol import fit_weak_model


def finetuned_ceiling(
    checkpoint: TransformerFiles,
    smiles: Sequence[str],
    y: np.ndarray,
    split: CellSplit,
    settings: CellSettings,
    cache_dir: Path,
    *,
    progress: bool = False,
) -> np.ndarray:
    """Test predictions of f_sc: the checkpoint finetuned on D_s's gold labels (one per seed,
    cached under ``cache_dir`` by a content hash of its inputs)."""
    return _student(checkpoint, smiles, y[split.strong], split, settings, cache_dir, "ceiling", progress)


def finetuned_w2s(
    checkpoint: TransformerFiles,
    smiles: Sequence[str],
    y: np.ndarray,
    H_w: np.ndarray,
    split: CellSplit,
    settings: CellSettings,
    ceiling: np.ndarray,
    cache_dir: Path,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """The ``ft_*`` measurements of one cell: f_w2s finetuned on f_w's labels of D_s,
    against the finetuned ceiling's test predictions ``ceiling``."""
    f_w = fit_weak_model(H_w, y, split.weak, settings.w2s.weak)
    weak_labels = f_w.predict(H_w[split.strong])
    pred_w2s = _student(checkpoint, smiles, weak_labels, split, settings, cache_dir, "w2s", progress)
    y_test = y[split.test]
    m_w, m_w2s, m_sc = (regression_metrics(y_test, p) for p in (f_w.predict(H_w[split.test]), pred_w2s, ceiling))
    return {
        "ft_err_w2s": m_w2s.mse,
        "ft_err_sc": m_sc.mse,
        "ft_rmse_w2s": m_w2s.rmse,
        "ft_rmse_sc": m_sc.rmse,
        "ft_pgr": pgr(m_w.mse, m_w2s.mse, m_sc.mse),
        "ft_predgap": mse(pred_w2s, ceiling),
        "ft_gain": m_w.mse - m_w2s.mse,
    }


def _student(
    checkpoint: TransformerFiles,
    smiles: Sequence[str],
    labels: np.ndarray,
    split: CellSplit,
    settings: CellSettings,
    cache_dir: Path,
    role: str,
    progress: bool,
) -> np.ndarray:
    """Test predictions of the checkpoint finetuned on ``labels`` (one per D_s row)."""
    fit_rows, valid_rows = validation_cut(split.strong, settings.w2s.student_valid_frac, split.seed)
    label_of = dict(zip(split.strong.tolist(), np.asarray(labels, dtype=np.float64).tolist(), strict=True))
    fit, valid = (
        LabelledSmiles.of([smiles[i] for i in rows], [label_of[i] for i in rows.tolist()])
        for rows in (fit_rows, valid_rows)
    )
    key = content_hash(
        "finetuned-student-v1",
        role,
        checkpoint.weights_digest(),
        [smiles[i] for i in split.test],
        fit_rows.tolist(),
        valid_rows.tolist(),
        labels,
        settings.w2s.finetune.model_dump(),
        split.seed,
    )
    cache = CachedResult(cache_dir / f"{role}.seed{split.seed}.{key}.json", key, field="key")
    cached = cache.load()
    if cached is not None:
        return np.asarray(cached["test_predictions"], dtype=np.float64)
    state_dir = cache_dir / "state" / key
    fitted = finetune_regressor(
        checkpoint, fit, valid, settings.w2s.finetune, seed=split.seed, state_dir=state_dir, progress=progress
    )
    pred = fitted.predict([smiles[i] for i in split.test])
    cache.store({"key": key, "best_epoch": fitted.best_epoch, "test_predictions": pred.tolist()})
    shutil.rmtree(state_dir, ignore_errors=True)
    return pred


@dataclass
class FinetunedStudent:
    """The sweep's finetuned student (a :class:`molw2s.experiment.students.Student`): the
    ``ft_*`` keys of each cell; the finetuned ceiling is trained once per seed."""

    checkpoint: TransformerFiles
    smiles: Sequence[str]
    cache_dir: Path
    parallel = False
    _ceilings: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def measure(
        self, y: np.ndarray, H_w: np.ndarray, split: CellSplit, config: CellSettings, *, progress: bool
    ) -> dict[str, Any]:
        """The ``ft_*`` measurements of the cell."""
        if split.seed not in self._ceilings:
            self._ceilings[split.seed] = finetuned_ceiling(
                self.checkpoint, self.smiles, y, split, config, self.cache_dir, progress=progress
            )
        ceiling = self._ceilings[split.seed]
        return finetuned_w2s(
            self.checkpoint, self.smiles, y, H_w, split, config, ceiling, self.cache_dir, progress=progress
        )


def finetuned_students(config: CellSettings, strong: ModelRef, cache_dir: Path) -> Callable[[Task], FinetunedStudent]:
    """A finetuned student per task (its models cached under ``cache_dir/<task>``); the
    strong model must be a transformer, ``bert:`` or ``hf:`` (checked here, before any heavy work)."""
    checkpoint = model_transformer(strong, "w2s.student=finetune")
    return lambda task: FinetunedStudent(checkpoint, task.smiles, cache_dir / safe_filename(task.name))
