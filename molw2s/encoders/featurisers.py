"""Featuriser specs as a model kind: Morgan fingerprints, MACCS keys, RDKit descriptors.

=====================================  ==========================================
``ecfp4-2048``, ``ecfp6-1024-counts``   Morgan fingerprints (ECFP diameter, bits)
``ecfp:radius=2,nbits=2048``            the same, by keywords (``counts=true``)
``maccs``                               MACCS keys
``rdkit2d``, ``rdkit2d-raw``            RDKit 2D descriptors (signed-log / raw)
=====================================  ==========================================
"""

from __future__ import annotations

import re

from molw2s.encoders.fingerprints import ECFPEncoder, MACCSEncoder, RDKitDescriptorEncoder
from molw2s.encoders.spec import Encoder, EncoderOptions, ModelRef
from molw2s.errors import ConfigError

FEATURISER_KIND = "featuriser"
_ECFP_SHORT = re.compile(r"^ecfp(\d+)(?:-(\d+))?(-counts)?$")


class FeaturiserKind:
    """Fingerprint and descriptor specs (case-insensitive); the spec is kept as written."""

    name = FEATURISER_KIND

    def parse(self, text: str) -> ModelRef | None:
        """A featuriser reference, checked by building its (cheap) encoder."""
        return None if featuriser_encoder(text) is None else ModelRef(FEATURISER_KIND, text)

    def encoder(self, ref: ModelRef, options: EncoderOptions) -> Encoder:
        """The featuriser ``ref.spec`` names (``options`` do not apply)."""
        encoder = featuriser_encoder(ref.spec)
        assert encoder is not None  # parse accepted it
        return encoder

    def describe(self) -> str:
        """The spec forms of featurisers."""
        return "ecfp4-2048, ecfp:radius=2,nbits=2048, maccs, rdkit2d or rdkit2d-raw"


def featuriser_encoder(spec: str) -> Encoder | None:
    """The featuriser ``spec`` names; None when it names none, a ConfigError when malformed."""
    lower = spec.lower()
    if match := _ECFP_SHORT.match(lower):
        diameter, nbits, counts = match.groups()
        return _ecfp(spec, int(diameter), int(nbits or 2048), bool(counts))
    if lower.startswith("ecfp:"):
        opts = {
            "radius": "2",
            "nbits": "2048",
            "counts": "false",
            **_keywords(spec, lower[5:], {"radius", "nbits", "counts"}),
        }
        if opts["counts"] not in ("true", "false"):
            raise ConfigError(f"encoder {spec!r}: counts must be true or false, got {opts['counts']!r}")
        radius, nbits = (_int_option(spec, key, opts[key]) for key in ("radius", "nbits"))
        return _ecfp(spec, 2 * radius, nbits, opts["counts"] == "true")
    if lower == "maccs":
        return MACCSEncoder()
    if lower in ("rdkit2d", "rdkit_desc", "rdkit2d-raw"):
        return RDKitDescriptorEncoder(raw=lower.endswith("-raw"))
    return None


def _ecfp(spec: str, diameter: int, nbits: int, counts: bool) -> ECFPEncoder:
    if diameter % 2 or diameter < 0 or nbits < 1:
        raise ConfigError(
            f"encoder {spec!r}: ECFP needs an even diameter >= 0 (ecfp4 = radius 2) and nbits >= 1, "
            f"got radius {diameter / 2:g} and nbits {nbits}"
        )
    return ECFPEncoder(diameter // 2, nbits, counts)


def _int_option(spec: str, key: str, value: str) -> int:
    """The integer ``value`` of option ``key`` of ``spec``; a ConfigError naming both otherwise."""
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"encoder {spec!r}: {key} must be a whole number, got {value!r}") from None


def _keywords(spec: str, body: str, allowed: set[str]) -> dict[str, str]:
    opts = {}
    for part in filter(None, body.split(",")):
        key, _, value = part.partition("=")
        if key not in allowed or not value:
            raise ConfigError(f"encoder {spec!r}: bad option {part!r}; allowed: {sorted(allowed)} as key=value")
        opts[key] = value
    return opts
