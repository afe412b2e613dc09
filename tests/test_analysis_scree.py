"""The scree figure: one line per representation, a marker at each k."""

from __future__ import annotations

import numpy as np
import pytest

from molw2s.analysis.scree import K_MARKER_GID, scree_figure


def _markers(fig, name):
    return [line for line in fig.axes[0].get_lines() if line.get_gid() == K_MARKER_GID.format(name=name)]


def test_scree_figure_lines_and_k_markers(tmp_path):
    strong = np.arange(1, 65, dtype=float) ** -1.5
    weak = np.r_[[5.0, 2.0], np.full(62, 0.1)]
    fig = scree_figure({"strong": strong, "weak": weak, "ecfp": strong * 2}, {"strong": 12.5, "weak": 2, "ecfp": 316})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    labels = [line.get_label() for line in ax.get_lines() if line.get_gid() is None]
    assert labels == ["strong (k = 12.5)", "weak (k = 2)", "ecfp (k = 316)"]
    (m,) = _markers(fig, "weak")
    assert m.get_xdata()[0] == 2 and m.get_ydata()[0] == pytest.approx(2.0) and m.get_marker() == "v"
    (m,) = _markers(fig, "strong")  # a fractional k sits on the line, interpolated in log space
    assert m.get_xdata()[0] == 12.5 and strong[12] < m.get_ydata()[0] < strong[11]
    (m,) = _markers(fig, "ecfp")  # k beyond the eigenvalues shown: at the last one, pointing right
    assert m.get_xdata()[0] == 64 and m.get_marker() == ">"
    fig.savefig(tmp_path / "scree.png")
    assert (tmp_path / "scree.png").stat().st_size > 0


def test_scree_figure_without_k_or_with_zero_eigenvalues():
    fig = scree_figure({"a": [3.0, 1.0, 0.0, 0.0]}, {}, title="t")
    ax = fig.axes[0]
    (line,) = ax.get_lines()
    assert np.isnan(line.get_ydata()[2:]).all() and ax.get_title() == "t"
    assert not _markers(scree_figure({"a": [0.0, 0.0]}, {"a": 1}), "a")  # nothing positive to mark
