"""Figures and the Markdown/HTML document model of the evaluation report."""

from __future__ import annotations

import numpy as np
import pandas as pd

from molw2s.analysis.document import Document
from molw2s.analysis.plots import burns_chart, pgr_chart, predictor_scatter, save_figure, theory_check_scatter


def _cells() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(5):
        for s in range(2):
            m = 0.2 * i + 0.01 * rng.normal()
            rows.append(
                {
                    "weak": f"w{i}",
                    "seed": s,
                    "M": m,
                    "err_w": 2 + m,
                    "err_w2s": 1 + m,
                    "err_sc": 0.5,
                    "pgr": 1 - m,
                    "predgap_hat": 0.1 * m,
                    "predgap": 0.15 * m + 0.01,
                }
            )
    return pd.DataFrame(rows)


def test_figures_saved_as_png_and_svg(tmp_path):
    cells = _cells()
    for name, fig in {
        "scatter": predictor_scatter(cells, "M", "err_w2s", title="demo"),
        "check": theory_check_scatter(cells),
        "pgr": pgr_chart(cells),
        "burns": burns_chart(cells, units="log mol/L"),
    }.items():
        paths = save_figure(fig, tmp_path / name)
        assert [p.suffix for p in paths] == [".png", ".svg"]
        assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in paths[1].read_bytes()[:2000]


def test_scatter_title_reports_spearman():
    fig = predictor_scatter(_cells(), "M", "err_w2s")
    assert "Spearman rho = 1.00" in fig.axes[0].get_title()


def test_document_renders_same_content_in_markdown_and_html():
    doc = Document("Report <x>")
    doc.heading("Task ESOL")
    doc.paragraph("M correlates with Err_w2s.")
    doc.table(pd.DataFrame({"weak": ["a", "b"], "M": [0.51234, 0.9]}))
    doc.image("fig/m.png", "M against Err_w2s")
    md, page = doc.to_markdown(), doc.to_html()
    assert md.startswith("# Report <x>") and "| weak | M |" in md and "| a | 0.512 |" in md
    assert "![M against Err_w2s](fig/m.png)" in md
    assert "Report &lt;x&gt;" in page and "<td>0.512</td>" in page and 'src="fig/m.png"' in page


def test_relative_errors_column_and_label():
    from molw2s.analysis.plots import LABELS
    from molw2s.experiment.run_statistics import cells_frame

    frame = cells_frame([{"task": "t", "weak": "a", "seed": 0, "err_w2s": 2.0, "err_sc": 0.5, "sensitivity": {}}])
    assert frame["err_w2s_over_sc"].tolist() == [4.0] and "Err_sc" in LABELS["err_w2s_over_sc"]
