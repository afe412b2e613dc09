"""Scree plots: the leading sample-covariance eigenvalues of representations, with the
principal dimension k chosen for each (docs/predictor.md, "k when there is no flat tail")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

#: the ``gid`` of the marker that shows representation NAME's k: ``K_MARKER_GID.format(name=NAME)``
K_MARKER_GID = "k:{name}"


def scree_figure(spectra: Mapping[str, Sequence[float]], ks: Mapping[str, float], *, title: str = "") -> Figure:
    """Eigenvalue (log scale) against its index j = 1, 2, ..., one line per representation,
    and a marker on each line at its k (from ``ks``; e.g. a mean over seeds, so it may be
    fractional). A k beyond the eigenvalues shown is marked at the last one with a
    right-pointing triangle; zero eigenvalues are not drawn. The legend gives each k."""
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, values) in enumerate(spectra.items()):
        lam = np.asarray(values, dtype=np.float64)
        x = np.arange(1, lam.size + 1)
        positive = lam > 0
        k = ks.get(name)
        label = name if k is None else f"{name} (k = {k:g})"
        color = f"C{i % 10}"
        ax.plot(x, np.where(positive, lam, np.nan), color=color, label=label)
        if k is None or k < 1 or not positive.any():
            continue
        at = min(float(k), float(x[positive][-1]))
        height = np.exp(np.interp(at, x[positive], np.log(lam[positive])))
        ax.plot(
            [at],
            [height],
            marker="v" if at == k else ">",
            markersize=9,
            linestyle="none",
            color=color,
            gid=K_MARKER_GID.format(name=name),
        )
    ax.set_yscale("log")
    ax.set_xlabel("index j")
    ax.set_ylabel("sample-covariance eigenvalue lambda_j (scaled features)")
    ax.set_title(title or "Spectra on D_s; markers at the chosen k")
    if spectra:
        ax.legend(fontsize="small")
    return fig
