"""scikit-learn adapter: any molw2s encoder as a transformer, SMILES in, features out.

``MolW2SFeaturizer`` works in a ``Pipeline`` with any regressor (the W2S heads
:class:`~molw2s.w2s.heads.RidgeHead` / ``SGDHead`` are scikit-learn estimators too), with
``clone``, ``GridSearchCV`` (over the encoder spec, pooling or layer as well) and
``set_output(transform="pandas")``. Inputs are canonicalised as molw2s tasks are, so a row
equals what ``embed_task`` computes for that molecule; an invalid SMILES is a DataError
naming its row (a transformer cannot drop rows inside a pipeline).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from molw2s.chem.smiles import parse_smiles
from molw2s.encoders.refs import model_encoder, parse_model_ref
from molw2s.encoders.spec import DEFAULT_POOLING, Encoder, EncoderOptions, Pooling, Precision
from molw2s.errors import DataError

SOURCE = "MolW2SFeaturizer input"


class MolW2SFeaturizer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """SMILES -> (n, d) float32 features of a molw2s encoder.

    ``encoder``: a spec (``"ecfp4-2048"``, ``"maccs"``, ``"rdkit2d"``, ``"bert:DIR"``,
    ``"hf:DIR_OR_NAME"``) or an :class:`~molw2s.encoders.embed.Encoder`; ``pooling``, ``layer``,
    ``batch_size``, ``device`` and ``precision`` apply to transformers (``pooling`` defaults to
    ``mean``, as every config does). ``fit`` builds the encoder
    (nothing is learnt: the representation is frozen; a checkpoint is loaded once and kept
    for every ``transform``) and records the output width in ``n_features_out_``.
    """

    def __init__(
        self,
        encoder: str | Encoder = "ecfp4-2048",
        *,
        pooling: Pooling = DEFAULT_POOLING,
        layer: int = -1,
        batch_size: int = 64,
        device: str = "auto",
        precision: Precision = "float32",
    ) -> None:
        self.encoder = encoder
        self.pooling = pooling
        self.layer = layer
        self.batch_size = batch_size
        self.device = device
        self.precision = precision

    def fit(self, X: Any, y: Any = None) -> MolW2SFeaturizer:
        """Build the encoder; the first molecule of ``X`` fixes ``n_features_out_``."""
        smiles = smiles_column(X)
        if not smiles:
            raise DataError(f"{SOURCE}: no molecules to fit on")
        if isinstance(self.encoder, str):
            options = EncoderOptions(
                pooling=self.pooling,
                layer=self.layer,
                batch_size=self.batch_size,
                device=self.device,
                precision=self.precision,
            )
            self.encoder_: Encoder = model_encoder(parse_model_ref(self.encoder), options)
        else:
            self.encoder_ = self.encoder
        self.n_features_out_ = int(self._encode(smiles[:1]).shape[1])
        return self

    def transform(self, X: Any) -> np.ndarray:
        """(n, d) float32 features, one row per SMILES of ``X``, in order."""
        check_is_fitted(self, "encoder_")
        return self._encode(smiles_column(X))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``<encoder>_0 ... <encoder>_{d-1}`` (for ``set_output`` and column transformers)."""
        check_is_fitted(self, "n_features_out_")
        prefix = self.encoder_.name.split(":")[0]
        return np.asarray([f"{prefix}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def _encode(self, smiles: list[str]) -> np.ndarray:
        parsed = parse_smiles(smiles, strict=True, source=SOURCE)
        return self.encoder_.encode(parsed.smiles)


def smiles_column(X: Any) -> list[str]:
    """The SMILES of ``X``: a sequence of strings, a 1-D array or Series, or one column of a
    2-D array or DataFrame (a DataError otherwise)."""
    values = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=object)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise DataError(f"{SOURCE}: expected one column of SMILES, got an array of shape {values.shape}")
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        raise DataError(f"{SOURCE}: row {bad[0]} is not a SMILES string: {values[bad[0]]!r}", row=bad[0])
    texts: Sequence[str] = values.tolist()
    return list(texts)
