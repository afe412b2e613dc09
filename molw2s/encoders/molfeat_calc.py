"""molfeat's offline calculators as a model kind: ``molfeat:NAME[?key=value&...]``.

``NAME`` is any calculator of ``molfeat.calc.get_calculator`` (``mordred``, ``fcfp``,
``ecfp``, ``maccs``, ``erg``, ``cats2d``, ``pharm2D``, ``scaffoldkeys``, ``estate``, ...);
the parameters are its keyword arguments (``molfeat:fcfp?length=1024&radius=2``; values
``true`` / ``false``, whole numbers and decimals are converted, anything else is a string).
Rows are computed in worker processes through :func:`molw2s.encoders.fingerprints.fingerprint_rows`
(progress bar, the row of the first invalid SMILES named as for ECFP); values a calculator
cannot compute (NaN, e.g. some Mordred descriptors) and infinities become 0.

An optional extra: ``pip install 'molw2s[molfeat]'``. molfeat's pretrained featurisers
(``molfeat.trans.pretrained``) download their weights and are not a kind here; see
docs/interoperability.md.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from molw2s.encoders.fingerprints import fingerprint_rows
from molw2s.encoders.spec import EncoderOptions, ModelRef
from molw2s.errors import ConfigError

MOLFEAT_KIND = "molfeat"
PREFIX = f"{MOLFEAT_KIND}:"
INSTALL = "pip install 'molw2s[molfeat]'"


class MolfeatKind:
    """``molfeat:NAME[?params]`` (prefix in any case); the calculator is built when parsed,
    so an unknown name or parameter fails before any work."""

    name = MOLFEAT_KIND

    def parse(self, text: str) -> ModelRef | None:
        """A molfeat reference with the canonical spec ``molfeat:NAME?k=v&...`` (keys sorted)."""
        if not text.lower().startswith(PREFIX):
            return None
        encoder = MolfeatEncoder.from_spec(text)
        return ModelRef(MOLFEAT_KIND, encoder.name)

    def encoder(self, ref: ModelRef, options: EncoderOptions) -> MolfeatEncoder:
        """The calculator's encoder (``options`` do not apply)."""
        return MolfeatEncoder.from_spec(ref.spec)

    def describe(self) -> str:
        """The spec form of molfeat calculators."""
        return "molfeat:NAME[?key=value&...]"


@dataclass(frozen=True)
class MolfeatEncoder:
    """One molfeat calculator; ``params`` as sorted (key, value) pairs; ``n_jobs`` processes
    (see :func:`~molw2s.encoders.fingerprints.featuriser_jobs`; the values do not depend on it)."""

    calculator: str
    params: tuple[tuple[str, Any], ...] = ()
    n_jobs: int | None = None

    @classmethod
    def from_spec(cls, spec: str) -> MolfeatEncoder:
        """The encoder ``spec`` names, its calculator built once (a ConfigError naming the
        spec when molfeat is missing or rejects the name or a parameter)."""
        body = spec[len(PREFIX) :]
        name, _, query = body.partition("?")
        if not name:
            raise ConfigError(f"encoder {spec!r}: name a calculator, e.g. molfeat:mordred")
        params = []
        for item in filter(None, query.split("&")):
            key, eq, value = item.partition("=")
            if not key or not eq:
                raise ConfigError(f"encoder {spec!r}: bad parameter {item!r}; use key=value joined by &")
            params.append((key, _value(value)))
        encoder = cls(name, tuple(sorted(params)))
        if importlib.util.find_spec("molfeat") is None:
            raise ConfigError(f"encoder {spec!r} needs molfeat, an optional extra: {INSTALL}")
        try:
            _ = encoder.width
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"encoder {spec!r}: molfeat refused it: {exc}") from None
        return encoder

    @property
    def name(self) -> str:
        """Canonical spec, e.g. ``molfeat:fcfp?length=1024``."""
        query = "&".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in self.params)
        return f"{PREFIX}{self.calculator}" + (f"?{query}" if query else "")

    @cached_property
    def width(self) -> int:
        """Features per molecule."""
        return len(self._calculator())

    def identity(self) -> dict[str, Any]:
        """Calculator, parameters and the molfeat and RDKit versions."""
        from importlib.metadata import version

        from rdkit import rdBase

        return {
            "kind": MOLFEAT_KIND,
            "calculator": self.calculator,
            "params": [list(p) for p in self.params],
            "molfeat": version("molfeat"),
            "rdkit": rdBase.rdkitVersion,
        }

    def encode(self, smiles: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """(n, width) float32 rows, non-finite values as 0."""
        return fingerprint_rows(self, smiles, self.n_jobs, progress)

    def row_writer(self) -> Callable[[Any, np.ndarray], None]:
        """Writes one molecule's features into a row (in a worker: its own calculator)."""
        calculator = self._calculator()

        def write(mol: Any, row: np.ndarray) -> None:
            row[:] = np.nan_to_num(np.asarray(calculator(mol), dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)

        return write

    def _calculator(self) -> Any:
        from molfeat.calc import get_calculator

        return get_calculator(self.calculator, **dict(self.params))


def _value(text: str) -> Any:
    """``true`` / ``false`` as bools, whole numbers as int, decimals as float, else the text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text
