"""Experiment tracking: training scalars (and report text) to TensorBoard or any logger with
the same two-method interface.

``tracking`` arguments across molw2s take ``"auto"`` (TensorBoard when the ``tensorboard``
package is installed, else nothing), ``"tensorboard"`` (an error if it is missing),
``"none"``, or a factory ``(log_dir, start_step) -> ScalarLogger`` for any other backend
(Weights & Biases, MLflow, a CSV file...). ``start_step`` is where a resumed run picks up:
a TensorBoard log drops its events from that step on, so a resumed curve has no doubled
stretch.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from molw2s.errors import ConfigError

#: the directory name, under a member, a finetuning run or a run directory, of its logs
LOG_DIR = "tensorboard"


class ScalarLogger(Protocol):
    """What molw2s logs to: scalars per step, text once, and a close at the end."""

    def log_scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Record ``values`` (tag -> number) at ``step``."""

    def log_text(self, tag: str, text: str) -> None:
        """Record a (Markdown) text under ``tag``."""

    def close(self) -> None:
        """Flush and release the log."""


LoggerFactory = Callable[[Path, int], ScalarLogger]
Tracking = Literal["auto", "tensorboard", "none"] | LoggerFactory
TRACKING_CHOICES = ("auto", "tensorboard", "none")


class NullLogger:
    """Logs nothing (``tracking="none"``, or ``"auto"`` without tensorboard)."""

    def log_scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Ignore ``values``."""

    def log_text(self, tag: str, text: str) -> None:
        """Ignore ``text``."""

    def close(self) -> None:
        """Nothing to release."""


class TensorBoardLogger:
    """Event files under ``log_dir`` (``torch.utils.tensorboard.SummaryWriter``); non-finite
    values are skipped (TensorBoard cannot plot them)."""

    def __init__(self, log_dir: str | Path, start_step: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(str(self.log_dir), purge_step=start_step or None)

    def log_scalars(self, step: int, values: Mapping[str, float]) -> None:
        """One scalar event per finite value."""
        for tag, value in values.items():
            if math.isfinite(value):
                self._writer.add_scalar(tag, float(value), global_step=step)

    def log_text(self, tag: str, text: str) -> None:
        """A text event (rendered as Markdown by TensorBoard's text tab)."""
        self._writer.add_text(tag, text)

    def close(self) -> None:
        """Flush the events to disk."""
        self._writer.close()


def tensorboard_available() -> bool:
    """True when the ``tensorboard`` package (which ``SummaryWriter`` needs) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def open_logger(tracking: Tracking, log_dir: str | Path, *, start_step: int = 0) -> ScalarLogger:
    """The logger ``tracking`` asks for, writing under ``log_dir`` (see the module docstring)."""
    if callable(tracking):
        return tracking(Path(log_dir), start_step)
    if tracking not in TRACKING_CHOICES:
        raise ConfigError(f"tracking must be one of {TRACKING_CHOICES} or a logger factory, got {tracking!r}")
    if tracking == "none" or (tracking == "auto" and not tensorboard_available()):
        return NullLogger()
    if not tensorboard_available():
        raise ConfigError("tracking='tensorboard' needs the tensorboard package: pip install 'molw2s[tensorboard]'")
    return TensorBoardLogger(log_dir, start_step)


def checked_tracking(value: str) -> Tracking:
    """A ``--tracking`` command-line value, checked (ConfigError listing the choices)."""
    if value not in TRACKING_CHOICES:
        raise ConfigError(f"--tracking must be one of {', '.join(TRACKING_CHOICES)}, got {value!r}")
    return cast("Tracking", value)


def finite_scalars(values: Mapping[str, Any]) -> dict[str, float]:
    """The entries of ``values`` that are real numbers (bools, None and text dropped)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)
    return out
