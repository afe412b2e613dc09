"""Progress bars are drawn only when asked for and stderr is a terminal (or MOLW2S_PROGRESS=1)."""

from __future__ import annotations

import io
import sys

import pytest

from molw2s.chem.chunks import map_chunks
from molw2s.progress import PROGRESS_ENV, show_progress


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("requested", "tty", "env", "shown"),
    [
        (True, True, None, True),
        (True, False, None, False),  # a log file: no bars
        (False, True, None, False),  # --no-progress wins on a terminal
        (True, False, "1", True),  # forced on
        (True, True, "0", False),  # forced off
        (False, False, "1", False),  # the variable never overrides --no-progress
        (True, False, "yes", False),  # other values: the terminal test
    ],
)
def test_show_progress(
    monkeypatch: pytest.MonkeyPatch, requested: bool, tty: bool, env: str | None, shown: bool
) -> None:
    monkeypatch.setattr(sys, "stderr", _Stream(tty))
    if env is None:
        monkeypatch.delenv(PROGRESS_ENV, raising=False)
    else:
        monkeypatch.setenv(PROGRESS_ENV, env)
    assert show_progress(requested) is shown


@pytest.mark.parametrize("tty", [True, False])
def test_bar_written_only_to_a_terminal(monkeypatch: pytest.MonkeyPatch, tty: bool) -> None:
    """A real tqdm site (the chunk mapper) writes its bar to a terminal and nothing to a file."""
    stream = _Stream(tty)
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    work = [(["a", "b"],), (["c"],)]
    out = list(map_chunks(len, work, n=3, n_jobs=1, parallel_from=10, progress=True, desc="chunks"))
    assert out == [2, 1]
    assert ("chunks" in stream.getvalue()) is tty
