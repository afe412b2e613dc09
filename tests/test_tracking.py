"""Experiment tracking: the logger choice, pretraining / finetuning / sweep scalars through a
recording logger, and real TensorBoard event files (a resumed run has no doubled steps)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
from test_pretrain_resume import STEPS, Killed, _family, _kill_at

from molw2s.errors import ConfigError
from molw2s.tracking import NullLogger, TensorBoardLogger, checked_tracking, open_logger


class Recorder:
    """A logger with the molw2s interface that keeps everything in memory."""

    instances: ClassVar[list[Recorder]] = []

    def __init__(self, log_dir: Path, start_step: int) -> None:
        self.log_dir, self.start_step = log_dir, start_step
        self.scalars: list[tuple[int, str, float]] = []
        self.texts: dict[str, str] = {}
        self.closed = False
        Recorder.instances.append(self)

    def log_scalars(self, step: int, values: Mapping[str, float]) -> None:
        self.scalars += [(step, tag, value) for tag, value in values.items()]

    def log_text(self, tag: str, text: str) -> None:
        self.texts[tag] = text

    def close(self) -> None:
        self.closed = True

    def steps(self, tag: str) -> list[int]:
        return [s for s, t, _ in self.scalars if t == tag]

    def value(self, tag: str, step: int) -> float:
        return next(v for s, t, v in self.scalars if t == tag and s == step)


@pytest.fixture
def recorder():
    Recorder.instances = []
    return Recorder


def test_logger_choice(tmp_path: Path, monkeypatch) -> None:
    assert isinstance(open_logger("none", tmp_path), NullLogger)
    made = open_logger(lambda d, s: Recorder(d, s), tmp_path / "x", start_step=7)
    assert isinstance(made, Recorder) and made.log_dir == tmp_path / "x" and made.start_step == 7
    with pytest.raises(ConfigError, match="tracking must be one of"):
        open_logger("wandb", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--tracking must be one of auto, tensorboard, none"):
        checked_tracking("yes")
    monkeypatch.setattr("molw2s.tracking.tensorboard_available", lambda: False)
    assert isinstance(open_logger("auto", tmp_path), NullLogger)
    with pytest.raises(ConfigError, match=r"pip install 'molw2s\[tensorboard\]'"):
        open_logger("tensorboard", tmp_path)


def test_pretraining_logs_windowed_loss_lr_throughput_and_held_out_metrics(tmp_path: Path, recorder) -> None:
    from molw2s.pretraining.family import pretrain_family

    pretrain_family(_family(), tmp_path, progress=False, tracking=recorder)
    (log,) = recorder.instances
    assert log.log_dir == tmp_path / "m" / "tensorboard" and log.start_step == 0 and log.closed
    assert log.steps("train/loss") == [10, STEPS] and log.steps("train/tokens_per_s") == [10, STEPS]
    history = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert log.steps("eval/mlm_accuracy") == [h["step"] for h in history] == [6, STEPS]
    for h in history:
        assert log.value("eval/mlm_loss", h["step"]) == h["mlm_loss"]
    # the loss of steps 11..12 alone: the run's mean over 7..12 (logged with the eval) mixes in 7..10
    last = log.value("train/loss", STEPS)
    mean_7_12, mean_7_10 = history[-1]["train_loss"], log.value("train/loss", 10)
    assert math.isclose(last, (6 * mean_7_12 - 4 * mean_7_10) / 2, rel_tol=1e-5)
    lr = log.value("train/lr", 10)
    assert 0 < lr < _family().train.lr  # decaying after warm-up


def test_finetuning_logs_each_epoch(logp_task_with_checkpoint, tmp_path: Path, recorder) -> None:
    import pandas as pd

    from molw2s.finetuning.config import FinetuneSettings
    from molw2s.finetuning.trainer import LabelledSmiles, finetune_regressor

    csv, checkpoint = logp_task_with_checkpoint
    frame = pd.read_csv(csv)
    smiles, y = frame["smiles"].tolist(), frame["logp"].to_numpy()
    train, valid = LabelledSmiles.of(smiles[:150], y[:150]), LabelledSmiles.of(smiles[150:], y[150:])
    settings = FinetuneSettings(epochs=3, batch_size=32, patience=None)
    fitted = finetune_regressor(checkpoint, train, valid, settings, tracking=recorder, log_dir=tmp_path / "tb")
    (log,) = recorder.instances
    assert log.start_step == 1 and log.closed
    assert log.steps("finetune/valid_rmse") == [1, 2, 3]
    assert [log.value("finetune/valid_rmse", h["epoch"]) for h in fitted.history] == [
        h["valid_rmse"] for h in fitted.history
    ]


def test_sweep_summary_goes_to_the_logger() -> None:
    from molw2s.experiment.summary import log_summary

    corr = {"predictor": "M", "measured": "err_w2s", "method": "spearman", "value": 0.5, "ci_low": -0.1}
    task = {
        "correlations": [{**corr, "ci_high": math.nan, "n_sources": 4, "p_value": 0.3, "verdict": "inconclusive"}],
        "interpretation": "M helps.",
        "predgap_check_spearman": 0.9,
        "regime": {"status": "w2s"},
    }
    results = {"name": "x", "tasks": {"ESOL": task}}
    log = Recorder(Path("."), 0)
    log_summary(results, log)
    assert log.scalars == [
        (0, "ESOL/M_vs_err_w2s/spearman", 0.5),
        (0, "ESOL/M_vs_err_w2s/spearman/ci_low", -0.1),
        (0, "ESOL/M_vs_err_w2s/spearman/p_value", 0.3),
    ]
    assert log.texts["ESOL/interpretation"] == "M helps."
    assert "| ESOL | w2s | 4 | 0.50 no interval (p 0.3)" in log.texts["headline"]


def test_tensorboard_events_of_a_resumed_run_have_no_doubled_steps(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from molw2s.pretraining.family import pretrain_family

    with pytest.raises(Killed):  # eval at step 6 is logged, then the run dies at 7 (checkpoint: 4)
        pretrain_family(_family(), tmp_path, progress=False, on_step=_kill_at(7), tracking="tensorboard")
    pretrain_family(_family(), tmp_path, progress=False, tracking="tensorboard")
    events = EventAccumulator(str(tmp_path / "m" / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/lr", "train/tokens_per_s", "eval/mlm_accuracy", "eval/mlm_loss"} <= set(
        events.Tags()["scalars"]
    )
    assert [e.step for e in events.Scalars("eval/mlm_loss")] == [6, STEPS]
    assert [e.step for e in events.Scalars("train/loss")] == [10, STEPS]


def test_tensorboard_logger_skips_non_finite_values(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = TensorBoardLogger(tmp_path)
    log.log_scalars(3, {"a": 1.5, "b": math.nan})
    log.log_text("note", "**hello**")
    log.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert events.Tags()["scalars"] == ["a"] and [e.value for e in events.Scalars("a")] == [1.5]
