"""Input checks shared by the heads, the protocol and the predictor.

Every check raises :class:`~molw2s.errors.DataError` (or ConfigError for settings) with
a message that names the input, and for non-finite values the first bad row and column,
so that bad input never turns into a silent NaN further down.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from molw2s.errors import ConfigError, DataError


def as_matrix(H: np.ndarray, name: str, *, path: str | Path | None = None, min_rows: int = 1) -> np.ndarray:
    """``H`` as a finite float64 (n, d) matrix; a DataError naming ``name`` otherwise."""
    arr = np.asarray(H)
    if arr.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (rows x features), got shape {arr.shape}", path=path)
    _check_real(arr, name, path)
    if arr.shape[0] < min_rows:
        raise DataError(f"{name} needs at least {min_rows} rows, got {arr.shape[0]}", path=path)
    if arr.shape[1] < 1:
        raise DataError(f"{name} has no feature columns (shape {arr.shape})", path=path)
    arr = arr.astype(np.float64, copy=False)
    _check_finite(arr, name, path)
    return arr


def as_vector(y: np.ndarray, name: str, *, n_rows: int | None = None, path: str | Path | None = None) -> np.ndarray:
    """``y`` as a finite float64 vector, with ``n_rows`` entries when given."""
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of labels, got shape {arr.shape}", path=path)
    _check_real(arr, name, path)
    if n_rows is not None and arr.shape[0] != n_rows:
        raise DataError(f"{name} has {arr.shape[0]} rows but the representation has {n_rows}", path=path)
    arr = arr.astype(np.float64, copy=False)
    _check_finite(arr[:, None], name, path)
    return arr


def same_rows(**arrays: np.ndarray) -> int:
    """The common number of rows of the named arrays; a DataError listing them if they differ."""
    rows = {name: int(np.shape(a)[0]) for name, a in arrays.items()}
    if len(set(rows.values())) > 1:
        listing = ", ".join(f"{name}: {n}" for name, n in rows.items())
        raise DataError(f"row counts differ ({listing}); every input must describe the same rows")
    return next(iter(rows.values()))


#: the largest ridge coefficient accepted: far beyond any useful regularisation (trace-scaled
#: features have a total variance of 1), and ``n * beta`` in the solves stays finite
MAX_BETA = 1e12


def check_beta(beta: float, name: str = "beta", *, allow_zero: bool = False) -> float:
    """``beta`` as a float, positive (or non-negative with ``allow_zero``) and at most
    :data:`MAX_BETA`."""
    value = float(beta)
    ok = np.isfinite(value) and (value >= 0 if allow_zero else value > 0) and value <= MAX_BETA
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be finite, {bound} and <= {MAX_BETA:g}, got {beta!r}")
    return value


def _check_real(arr: np.ndarray, name: str, path: str | Path | None) -> None:
    """Real numbers only: complex values would lose their imaginary part silently."""
    if np.iscomplexobj(arr):
        raise DataError(f"{name} holds complex numbers (dtype {arr.dtype}); give real-valued data", path=path)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{name} must be numeric, got dtype {arr.dtype}", path=path)


def _check_finite(arr: np.ndarray, name: str, path: str | Path | None) -> None:
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    rows, cols = np.nonzero(bad)
    row, col = int(rows[0]), int(cols[0])
    what = "nan" if np.isnan(arr[row, col]) else "inf"
    column = None if arr.shape[1] == 1 else str(col)
    raise DataError(
        f"{name} contains {what} ({int(bad.sum())} non-finite entries in {len(np.unique(rows))} rows, "
        "the first one located here, 0-based); remove or impute those rows first",
        path=path,
        row=row,
        column=column,
    )
