"""The finetuned multi-capability student (``student.kind: finetune``): the strong encoder
(a ``bert:`` checkpoint or an ``hf:`` model) finetuned end to end on every capability's
labels at once, one output per capability, by
:func:`molw2s.finetuning.trainer.finetune_regressor` (masked MSE, capabilities weighted
equally). Each capability's training rows hold out ``valid_frac`` for early stopping,
validated on the labels the student trains on (weak labels for a W2S student: it never
sees a gold label it should not).

After training, the student predicts every molecule of D_s and of the test part of each
capability it learnt; those predictions are what the experiments read. With a cache
directory, a finished run is stored as ``<cache>/<key>.json`` (its predictions), keyed by
a content hash of the checkpoint, the settings, the capabilities' molecules and splits,
the training rows and labels, and, for stage 2, the stage-1 run's key, so a rerun or a
killed run skips finished runs; an unfinished run resumes from ``<cache>/state/<key>``.
Weights are not cached (a BERT-base model per run would not fit on disk): stage 2 of a
stage-1 run read from the cache retrains stage 1 first, which gives the same weights.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molw2s.encoders.model_files import MODEL_FILE
from molw2s.encoders.transformer import TransformerFiles, transformer_files
from molw2s.errors import DataError
from molw2s.finetuning.holdout import validation_cut
from molw2s.finetuning.trainer import FinetunedRegressor, LabelledSmiles, finetune_regressor
from molw2s.io import CachedResult, content_hash
from molw2s.multicap.capability import Capability
from molw2s.multicap.config import StudentConfig
from molw2s.multicap.labelled import Labelled, check_data

CACHE_VERSION = "multicap-finetune-v1"


@dataclass(frozen=True)
class FinetuneSetup:
    """What the finetuned student needs besides its settings: the strong transformer (a
    ``bert:`` checkpoint directory or any transformer files, e.g. an ``hf:`` model) and where
    finished runs are cached (None: nothing is cached)."""

    checkpoint: Path | TransformerFiles
    cache_dir: Path | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.checkpoint, Path) and not (self.checkpoint / MODEL_FILE).is_file():
            raise DataError(f"{self.checkpoint}: not a model checkpoint (no {MODEL_FILE}) for the finetune student")

    @property
    def files(self) -> TransformerFiles:
        """The strong transformer's files."""
        return transformer_files(self.checkpoint)


class FinetuneStudent:
    """One encoder finetuned on every capability of its training data (see the module doc)."""

    def __init__(self, config: StudentConfig, caps: Sequence[Capability], setup: FinetuneSetup) -> None:
        missing = [c.name for c in caps if c.smiles is None]
        if missing:
            raise DataError(f"the finetune student reads SMILES, and capabilities {missing} have none")
        self.config, self.setup = config, setup
        self.caps = {c.name: c for c in caps}
        self.names: list[str] = []
        self.key = ""
        self.best_epoch = 0
        self.predictions: dict[str, np.ndarray] = {}
        self._data: Labelled = {}
        self._parent: FinetuneStudent | None = None
        self._model: FinetunedRegressor | None = None

    def fit(self, data: Labelled) -> FinetuneStudent:
        """Finetune the checkpoint on every capability of ``data`` (stage 1); returns self."""
        self._check(data)
        self.names = list(data)
        self._run(data, parent=None, use_cache=True)
        return self

    def refine(self, data: Labelled) -> FinetuneStudent:
        """Stage 2: a new student finetuned on ``data`` from this one's weights, pulled
        towards them with weight ``prox``."""
        self._check(data)
        unknown = sorted(set(data) - set(self.names))
        if unknown:
            raise DataError(f"stage 2 on capabilities {unknown} that stage 1 did not train")
        out = FinetuneStudent(self.config, list(self.caps.values()), self.setup)
        out.names = self.names
        out._run(data, parent=self, use_cache=True)
        return out

    def predict(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Predictions of capability ``name`` for ``rows`` (rows of D_s or the test part)."""
        if name not in self.predictions:
            raise DataError(f"the finetune student did not learn capability {name} (it learnt {self.names})")
        pred: np.ndarray = self.predictions[name][np.asarray(rows)]
        if np.isnan(pred).any():
            raise DataError(f"capability {name}: the finetune student predicts D_s and the test part only")
        return pred

    def trained_model(self) -> FinetunedRegressor:
        """The finetuned model (retrained deterministically when this run came from the cache)."""
        if self._model is None:
            self._run(self._data, parent=self._parent, use_cache=False)
        assert self._model is not None
        return self._model

    def _check(self, data: Labelled) -> None:
        check_data(data)
        unknown = sorted(set(data) - set(self.caps))
        if unknown:
            raise DataError(f"the student was not built for capabilities {unknown}")

    def _parts(self, data: Labelled) -> tuple[LabelledSmiles, LabelledSmiles]:
        """Training and validation molecules, labels and outputs over every capability."""
        parts: dict[str, tuple[list[str], list[np.ndarray], list[np.ndarray]]] = {
            "fit": ([], [], []),
            "valid": ([], [], []),
        }
        for name, (rows, y) in data.items():
            smiles = self.caps[name].smiles
            assert smiles is not None
            rows, y = np.asarray(rows), np.asarray(y, dtype=np.float64)
            fit, valid = validation_cut(np.arange(len(rows)), self.config.valid_frac, self.config.seed)
            for part, pick in (("fit", fit), ("valid", valid)):
                parts[part][0].extend(smiles[i] for i in rows[pick])
                parts[part][1].append(y[pick])
                parts[part][2].append(np.full(len(pick), self.names.index(name)))
        fit_part, valid_part = (
            LabelledSmiles.of(s, np.concatenate(y), np.concatenate(o)) for s, y, o in parts.values()
        )
        return fit_part, valid_part

    def _key(self, data: Labelled, parent: FinetuneStudent | None) -> str:
        caps = [
            [name, list(self.caps[name].smiles or []), self.caps[name].strong, self.caps[name].test]
            for name in self.names
        ]
        trained = [[name, np.asarray(rows), np.asarray(y, dtype=np.float64)] for name, (rows, y) in data.items()]
        return content_hash(
            CACHE_VERSION,
            self.setup.files.weights_digest(),
            self.config.model_dump(mode="json", include={"finetune", "valid_frac", "seed"}),
            caps,
            trained,
            None if parent is None else [parent.key, self.config.prox],
        )

    def _run(self, data: Labelled, *, parent: FinetuneStudent | None, use_cache: bool) -> None:
        self._data, self._parent = data, parent
        self.key = self._key(data, parent)
        cache = self.setup.cache_dir
        result = None if cache is None else CachedResult(cache / f"{self.key}.json", self.key, field="key")
        cached = None if result is None or not use_cache else result.load()
        if cached is not None:
            self.best_epoch = int(cached["best_epoch"])
            self.predictions = {
                name: np.array([np.nan if v is None else v for v in values], dtype=np.float64)
                for name, values in cached["predictions"].items()
            }
            return
        fit, valid = self._parts(data)
        state_dir = None if cache is None else cache / "state" / self.key
        self._model = finetune_regressor(
            self.setup.files,
            fit,
            valid,
            self.config.finetune,
            seed=self.config.seed,
            start_from=None if parent is None else parent.trained_model(),
            anchor=0.0 if parent is None else self.config.prox,
            state_dir=state_dir,
            progress=self.setup.progress,
        )
        self.best_epoch = self._model.best_epoch
        self.predictions = {}
        for k, name in enumerate(self.names):
            cap = self.caps[name]
            assert cap.smiles is not None
            rows = np.union1d(cap.strong, cap.test)
            values = np.full(len(cap.y), np.nan)
            values[rows] = self._model.predict([cap.smiles[i] for i in rows], output=k)
            self.predictions[name] = values
        if result is not None:
            payload = {
                "key": self.key,
                "best_epoch": self.best_epoch,
                "predictions": {n: [None if np.isnan(v) else float(v) for v in p] for n, p in self.predictions.items()},
            }
            result.store(payload)
        if state_dir is not None:
            shutil.rmtree(state_dir, ignore_errors=True)
