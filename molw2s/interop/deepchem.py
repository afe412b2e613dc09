"""deepchem adapters: molw2s encoders as deepchem featurizers, deepchem's MoleculeNet loaders into molw2s.

Needs the optional extra (``pip install 'molw2s[deepchem]'``). deepchem is imported when
this module is, and only then: ``import molw2s`` and ``import molw2s.interop`` never load
it, and without deepchem importing this module raises an ImportError that says what to
install. (The featurizer subclasses ``deepchem.feat.MolecularFeaturizer``, so the class
cannot exist before deepchem is imported.)

- :class:`EncoderFeaturizer`: any molw2s encoder (checkpoint, fingerprint, descriptors)
  as a deepchem featurizer, for ``dc.data.CSVLoader``, ``dc.molnet.load_*`` and deepchem
  models.
- :func:`load_deepchem_task`: ESOL, FreeSolv or Lipop read by deepchem's own loader
  (``dc.molnet.load_delaney`` / ``load_sampl`` / ``load_lipo``, which download into
  deepchem's data directory when the file is missing) and split by a deepchem splitter,
  returned as a molw2s :class:`~molw2s.data.tasks.Task` and that split in task positions.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rdkit import Chem

from molw2s.chem.smiles import InvalidSmiles, format_invalid, parse_smiles
from molw2s.data.registry import TASK_SOURCES, lookup_name, task_aliases
from molw2s.data.splits import MappedSplit, check_fractions, to_positions, validate_split
from molw2s.data.tasks import Task, load_task
from molw2s.encoders.refs import model_encoder, parse_model_ref
from molw2s.encoders.spec import Encoder
from molw2s.errors import ConfigError, DataError, DataNotFoundError
from molw2s.io import content_hash

try:
    import deepchem as dc
except ImportError as exc:
    raise ImportError(f"molw2s.interop.deepchem needs deepchem: pip install 'molw2s[deepchem]' ({exc})") from exc

log = logging.getLogger(__name__)

#: task -> (deepchem loader in ``dc.molnet``, the file it reads from its data directory).
#: FreeSolv is MoleculeNet's SAMPL.csv (``load_sampl``); deepchem 2.8's ``load_freesolv``
#: reads a different, modified file.
DEEPCHEM_LOADERS: dict[str, tuple[str, str]] = {
    "ESOL": ("load_delaney", "delaney-processed.csv"),
    "FreeSolv": ("load_sampl", "SAMPL.csv"),
    "Lipop": ("load_lipo", "Lipophilicity.csv"),
}


class EncoderFeaturizer(dc.feat.MolecularFeaturizer):  # type: ignore[misc]
    """A molw2s encoder as a deepchem ``MolecularFeaturizer``.

    ``encoder``: a spec string (``"ecfp4-2048"``, ``"maccs"``, ``"rdkit2d"``,
    ``"bert:DIR"``) or an :class:`~molw2s.encoders.embed.Encoder` (for a checkpoint with
    non-default pooling or layer, pass ``parse_encoder_spec("bert:DIR", pooling="cls")``;
    checkpoints are mean-pooled by default).

    Inputs (SMILES or RDKit molecules) are canonicalised as molw2s tasks are, so a row
    matches what ``embed_task`` computes for that molecule. A whole call is encoded in one
    ``encode`` call (a checkpoint is loaded once per call, not once per molecule). As in
    deepchem, an input that cannot be parsed gets an empty array (the result is then a
    ragged object array, which ``dc.data.CSVLoader`` drops rows from); each such row is
    logged with RDKit's reason and kept in :attr:`last_invalid`.
    """

    def __init__(self, encoder: str | Encoder) -> None:
        super().__init__()
        self.encoder: Encoder = model_encoder(parse_model_ref(encoder)) if isinstance(encoder, str) else encoder
        self.last_invalid: list[InvalidSmiles] = []  # inputs the last featurize call could not parse

    def featurize(self, datapoints: Any, log_every_n: int = 1000, **kwargs: Any) -> np.ndarray:
        """(n, d) float32 features of SMILES / RDKit molecules (one or an iterable).

        With invalid inputs: an object array of n rows, empty where featurization failed.
        ``log_every_n`` is accepted for deepchem's signature; encoding is one batch.
        """
        if kwargs:
            raise TypeError(f"{type(self).__name__}.featurize takes no per-datapoint arguments, got {sorted(kwargs)}")
        points = [datapoints] if isinstance(datapoints, (str, Chem.Mol)) else list(datapoints)
        texts = [Chem.MolToSmiles(p) if isinstance(p, Chem.Mol) else p for p in points]
        parsed = parse_smiles(texts)
        self.last_invalid = parsed.invalid
        log.info("%s: encoding %d molecules in one batch", self.encoder.name, len(parsed.smiles))
        values = self.encoder.encode(parsed.smiles)
        if not parsed.invalid:
            return values
        log.warning(
            "%s: empty features for these rows (deepchem drops them from datasets): %s",
            self.encoder.name,
            format_invalid(parsed.invalid, len(texts), max_examples=len(parsed.invalid)),
        )
        out = np.empty(len(texts), dtype=object)
        out[:] = [np.array([]) for _ in texts]
        for value, row in zip(values, parsed.index):
            out[row] = value
        return out

    def _featurize(self, datapoint: Any) -> np.ndarray:
        """Features of one molecule (deepchem's per-datapoint hook; DataError if it is invalid)."""
        features = self.featurize([datapoint])
        if self.last_invalid:
            raise DataError(f"cannot featurize {self.last_invalid[0]}")
        row: np.ndarray = features[0]
        return row

    def __str__(self) -> str:
        """Unique per encoder identity: deepchem names its molnet cache folders with it."""
        return f"{type(self).__name__}_{content_hash(self.encoder.identity())}"


def load_deepchem_task(
    name: str,
    *,
    splitter: str | Any = "scaffold",
    frac: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int | None = None,
    data_dir: str | Path | None = None,
) -> tuple[Task, MappedSplit]:
    """A MoleculeNet task through deepchem's loader, and deepchem's split of it.

    ``name``: ESOL, FreeSolv or Lipop (or an alias: delaney, sampl, lipo). deepchem's
    loader reads its file from ``data_dir`` (default: deepchem's data directory), or
    downloads it there. The molw2s Task is read from that same file, cleaned as
    :func:`~molw2s.data.tasks.load_task` does. ``splitter`` (a deepchem Splitter or a
    name in ``dc.molnet.splitters``: random, scaffold, ...) splits all file rows with
    ``frac`` and ``seed``; the split is returned in task positions, with the rows of
    excluded molecules listed in ``MappedSplit.dropped``.
    """
    key = lookup_name(name, list(DEEPCHEM_LOADERS), task_aliases())
    if key not in DEEPCHEM_LOADERS:
        raise ConfigError(f"no deepchem loader for task {name!r}; use one of {list(DEEPCHEM_LOADERS)}")
    splitter = _splitter(splitter)
    f_train, f_valid, f_test = check_fractions(frac)
    loader, filename = DEEPCHEM_LOADERS[key]
    folder = Path(data_dir).expanduser() if data_dir is not None else Path(dc.utils.data_utils.get_data_dir())
    path = folder / filename
    try:
        columns, (dataset,), _ = getattr(dc.molnet, loader)(
            featurizer=dc.feat.DummyFeaturizer(),  # keeps every row: dataset index = file row
            splitter=None,
            transformers=[],
            reload=False,
            data_dir=str(folder),
            save_dir=str(folder),
        )
    except OSError as exc:
        if path.is_file():
            raise
        raise DataNotFoundError(
            f"{key}: deepchem's {loader} found no {filename} in {folder} and could not download it ({exc}); "
            f"put MoleculeNet's {filename} there or pass data_dir"
        ) from exc
    try:
        n_read = len(dataset)
        parts = splitter.split(dataset, frac_train=f_train, frac_valid=f_valid, frac_test=f_test, seed=seed)
    finally:
        shutil.rmtree(dataset.data_dir, ignore_errors=True)  # the loader's temporary copy
    task = load_task(str(path), smiles_col="smiles", label_col=columns[0])
    if n_read != task.n_rows:
        raise DataError(f"deepchem read {n_read} rows, molw2s {task.n_rows}: cannot align the split", path=path)
    split = validate_split(dict(zip(("train", "valid", "test"), parts)), task.n_rows, source=path)
    mapped = to_positions(split, task.row_index, task.duplicates)
    if mapped.n_dropped():
        log.warning("%s: %d split rows dropped (molecules excluded from the task)", path, mapped.n_dropped())
    return replace(task, name=key, description=TASK_SOURCES[key].description), mapped


def _splitter(splitter: str | Any) -> Any:
    if not isinstance(splitter, str):
        return splitter
    known: dict[str, Any] = dc.molnet.splitters
    if splitter.lower() not in known:
        raise ConfigError(f"unknown deepchem splitter {splitter!r}; use a dc.splits.Splitter or one of {sorted(known)}")
    return known[splitter.lower()]
