"""Precomputed embeddings as a model kind: ``table:FILE[#NAME]``, a table keyed by SMILES.

=================  ===================================================================
``.csv``           a SMILES column (``#NAME``, default ``smiles``) and numeric feature
                   columns: every other column, in file order
``.parquet``       the same (needs pyarrow: ``pip install pyarrow``)
``.npz``           arrays ``smiles`` (strings) and the features (``#NAME``, default ``X``,
                   shape (n, d)); read with ``allow_pickle=False``, so never unpickled
=================  ===================================================================

The table's SMILES and the molecules asked for are both canonicalised by
:func:`molw2s.chem.smiles.canonicalize` (as tasks are), so any spelling of a molecule finds
its row. A row whose SMILES RDKit cannot parse is skipped (logged); two rows of one
molecule with different features are an error. A molecule missing from the table is an
error naming a few of them and their count. The cache key holds the file's sha256.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from molw2s.encoders.spec import EncoderOptions, ModelRef
from molw2s.errors import ConfigError, DataError
from molw2s.io import file_digest

log = logging.getLogger(__name__)

TABLE_KIND = "table"
PREFIX = f"{TABLE_KIND}:"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}
#: the default ``#NAME``: the SMILES column of CSV / Parquet, the feature array of NPZ
DEFAULT_NAME = {"csv": "smiles", "parquet": "smiles", "npz": "X"}


class TableKind:
    """``table:FILE[#NAME]`` (prefix in any case); the file must exist when parsed."""

    name = TABLE_KIND

    def parse(self, text: str) -> ModelRef | None:
        """A table reference with the canonical spec ``table:<path>#<name>``."""
        if not text.lower().startswith(PREFIX):
            return None
        body = text[len(PREFIX) :]
        file, _, column = body.rpartition("#") if "#" in body else (body, "", "")
        path = Path(file).expanduser()
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise ConfigError(f"encoder {text!r}: a table is a .csv, .parquet or .npz file, got {path.name!r}")
        if not path.is_file():
            raise ConfigError(f"encoder {text!r}: table file {path} not found")
        return ModelRef(TABLE_KIND, f"{PREFIX}{path}#{column or DEFAULT_NAME[fmt]}", path)

    def encoder(self, ref: ModelRef, options: EncoderOptions) -> TableEncoder:
        """The row lookup of the table (``options`` do not apply)."""
        assert ref.path is not None
        return TableEncoder(ref.path, ref.spec.rpartition("#")[2])

    def describe(self) -> str:
        """The spec form of tables."""
        return "table:FILE.csv|.parquet|.npz[#NAME]"


@dataclass
class TableEncoder:
    """Rows of a precomputed table, looked up by canonical SMILES (read once per file version)."""

    path: Path
    column: str
    _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def name(self) -> str:
        """``table:<path>#<name>``."""
        return f"{PREFIX}{self.path}#{self.column}"

    @property
    def format(self) -> str:
        """``csv``, ``parquet`` or ``npz``, from the suffix."""
        return FORMATS[self.path.suffix.lower()]

    def identity(self) -> dict[str, Any]:
        """The file's sha256, its format and the ``#NAME``."""
        digest = self._table()[0]
        return {"kind": TABLE_KIND, "sha256": digest, "format": self.format, "name": self.column}

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, d) float32 rows of the molecules ``smiles``; a DataError naming the missing ones."""
        from molw2s.chem.smiles import canonicalize

        _, lookup, values = self._table()
        keys = [canonicalize(s) or s for s in smiles]
        rows = [lookup.get(key, -1) for key in keys]
        missing = [s for s, row in zip(smiles, rows) if row < 0]
        if missing:
            shown = ", ".join(repr(s) for s in missing[:5])
            raise DataError(
                f"{len(missing)} of {len(smiles)} molecules are not in the table {self.path} "
                f"(looked up by canonical SMILES), e.g. {shown}"
            )
        out: np.ndarray = values[np.asarray(rows, dtype=np.int64)].astype(np.float32)
        return out

    def _table(self) -> tuple[str, dict[str, int], np.ndarray]:
        """(sha256, canonical SMILES -> row, features), reread when the file changes."""
        stat = self.path.stat()
        signature = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if self._loaded.get("signature") != signature:
            smiles, values = read_table(self.path, self.format, self.column)
            self._loaded.update(
                signature=signature,
                table=(file_digest(self.path, "sha256"), _index(self.path, smiles, values), values),
            )
        table: tuple[str, dict[str, int], np.ndarray] = self._loaded["table"]
        return table


def read_table(path: Path, fmt: str, name: str) -> tuple[list[str], np.ndarray]:
    """(SMILES, (n, d) float64 features) of a table file; a DataError naming what is wrong."""
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as arrays:
            for key in ("smiles", name):
                if key not in arrays.files:
                    raise DataError(f"needs arrays 'smiles' and {name!r}; it has {arrays.files}", path=str(path))
            try:
                smiles, values = arrays["smiles"], arrays[name]
            except ValueError:  # an object array would need unpickling
                raise DataError(
                    "an array holds Python objects, which molw2s never unpickles; save SMILES as a string array "
                    "(np.array(smiles, dtype=str)) and features as numbers",
                    path=str(path),
                ) from None
        if values.ndim != 2 or len(values) != len(smiles) or smiles.ndim != 1:
            raise DataError(
                f"'smiles' must be 1-D and {name!r} 2-D with one row per SMILES; got shapes "
                f"{smiles.shape} and {values.shape}",
                path=str(path),
            )
        return [str(s) for s in smiles], _numeric(path, values)
    frame = _read_frame(path, fmt)
    if name not in frame.columns:
        raise DataError(
            f"no SMILES column {name!r} (name it with table:FILE#COLUMN); columns: {list(frame.columns)}",
            path=str(path),
        )
    features = frame.drop(columns=[name])
    if features.shape[1] == 0:
        raise DataError(f"has no feature columns besides {name!r}", path=str(path))
    bad = [str(c) for c, kind in features.dtypes.items() if kind.kind not in "biuf"]
    if bad:
        raise DataError(f"feature columns must be numeric; not numeric: {bad[:5]}", path=str(path))
    return [str(s) for s in frame[name]], _numeric(path, features.to_numpy(dtype=np.float64))


def _read_frame(path: Path, fmt: str) -> Any:
    import pandas as pd

    if fmt == "csv":
        return pd.read_csv(path)
    try:
        return pd.read_parquet(path)
    except ImportError as exc:
        raise ConfigError(f"reading {path} needs pyarrow: pip install pyarrow ({exc})") from None


def _numeric(path: Path, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind not in "biuf":
        raise DataError(f"features must be numbers, got dtype {values.dtype}", path=str(path))
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise DataError(f"features must be finite; row {row} is not", path=str(path))
    return values


def _index(path: Path, smiles: list[str], values: np.ndarray) -> dict[str, int]:
    """Canonical SMILES -> row; unparseable rows are skipped (logged), conflicting duplicates refused."""
    from molw2s.chem.smiles import canonicalize

    lookup: dict[str, int] = {}
    skipped = 0
    for row, text in enumerate(smiles):
        key = canonicalize(text)
        if key is None:
            skipped += 1
            continue
        first = lookup.setdefault(key, row)
        if first != row and not np.array_equal(values[first], values[row]):
            raise DataError(
                f"rows {first} and {row} are one molecule ({key!r}) with different features", path=str(path)
            )
    if skipped:
        log.warning("%s: %d of %d SMILES could not be parsed and were skipped", path, skipped, len(smiles))
    return lookup
