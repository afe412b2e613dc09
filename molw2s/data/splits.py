"""Train/valid/test splits (random, scaffold, validated index lists) and the W2S split D_w / D_s.

Pure index maths: no file is read here (split files: :mod:`molw2s.data.split_files`).
Index conventions: :func:`random_split` returns 0-based *file rows* (as ChemBench's JSON
files do); :func:`scaffold_split` returns positions in the list it is given.
:func:`to_positions` maps file rows onto a task's positions, reporting rows whose
molecule was excluded; a merged duplicate's row follows its kept twin.

``random_split`` follows deepchem's RandomSplitter exactly (``RandomState(seed).permutation``,
cut-offs ``int(0.8 n)`` and ``int(0.9 n)``), so seeds 122/123/124 reproduce the
paper's ChemBench split files index for index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from molw2s.chem.smiles import mol_from_smiles
from molw2s.errors import ConfigError, DataError

PARTS = ("train", "valid", "test")
Fractions = tuple[float, float, float]


@dataclass(frozen=True)
class Split:
    """Sorted int64 index arrays of the train, valid and test parts."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        """Number of indices in each part."""
        return {part: len(getattr(self, part)) for part in PARTS}

    def as_dict(self) -> dict[str, list[int]]:
        """``{"train": [...], "valid": [...], "test": [...]}`` (the JSON file format)."""
        return {part: getattr(self, part).tolist() for part in PARTS}


@dataclass(frozen=True)
class W2SSplit:
    """Disjoint subsets of the training part: D_w (weak, gold labels) and D_s (strong)."""

    weak: np.ndarray
    strong: np.ndarray


@dataclass(frozen=True)
class MappedSplit:
    """A split in task positions, the file rows dropped because their molecule was excluded,
    and the rows of merged duplicates whose molecule sits in an earlier part (``moved``)."""

    split: Split
    dropped: dict[str, np.ndarray] = field(default_factory=dict)
    moved: dict[str, np.ndarray] = field(default_factory=dict)

    def n_dropped(self) -> int:
        """Total number of dropped rows."""
        return sum(len(v) for v in self.dropped.values())

    def n_moved(self) -> int:
        """Total number of rows whose molecule was kept in an earlier part."""
        return sum(len(v) for v in self.moved.values())


def check_fractions(frac: Sequence[float]) -> Fractions:
    """Three non-negative fractions summing to 1 (ConfigError otherwise)."""
    values = tuple(float(f) for f in frac)
    if len(values) != 3 or min(values) < 0 or abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {list(frac)}")
    return values


def random_split(n: int, frac: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """Seeded random split of ``range(n)`` (deepchem RandomSplitter convention)."""
    f_train, f_valid, _ = check_fractions(frac)
    order = np.random.RandomState(seed).permutation(n)
    a, b = int(f_train * n), int((f_train + f_valid) * n)
    return _split_from_lists(order[:a], order[a:b], order[b:])


def murcko_scaffold(smiles: str) -> str:
    """Bemis-Murcko scaffold SMILES without chirality ('' for acyclic molecules)."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    mol, reason = mol_from_smiles(smiles)
    if mol is None:
        raise DataError(f"cannot compute the scaffold of {smiles!r}: {reason}")
    scaffold: str = MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)  # type: ignore[no-untyped-call]
    return scaffold


def scaffold_split(smiles: Sequence[str], frac: Sequence[float] = (0.8, 0.1, 0.1), seed: int | None = None) -> Split:
    """Split by Bemis-Murcko scaffold: molecules sharing a scaffold land in the same part.

    ``seed=None``: deepchem's ScaffoldSplitter (deterministic; scaffold groups by size,
    largest first, fill train, then valid, then test). An int ``seed``: chemprop's
    balanced variant (groups larger than half the valid/test size first, then the
    rest, each shuffled with ``seed``).
    """
    f_train, f_valid, f_test = check_fractions(frac)
    n = len(smiles)
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(smiles):
        groups.setdefault(murcko_scaffold(text), []).append(i)
    sets = list(groups.values())
    if seed is None:
        ordered = sorted(sets, key=lambda s: (len(s), s[0]), reverse=True)
    else:
        rng = np.random.default_rng(seed)
        big = [s for s in sets if len(s) > min(f_valid, f_test) * n / 2]
        small = [s for s in sets if len(s) <= min(f_valid, f_test) * n / 2]
        ordered = [big[i] for i in rng.permutation(len(big))] + [small[i] for i in rng.permutation(len(small))]
    parts: dict[str, list[int]] = {part: [] for part in PARTS}
    for s in ordered:
        if len(parts["train"]) + len(s) <= f_train * n:
            parts["train"] += s
        elif seed is None and len(parts["train"]) + len(parts["valid"]) + len(s) <= (f_train + f_valid) * n:
            parts["valid"] += s  # deepchem: cumulative cut-off
        elif seed is not None and len(parts["valid"]) + len(s) <= f_valid * n:
            parts["valid"] += s  # chemprop: valid's own size
        else:
            parts["test"] += s
    return _split_from_lists(parts["train"], parts["valid"], parts["test"])


def validate_split(parts: Mapping[str, object], n_rows: int, source: str | Path | None = None) -> Split:
    """Check a ``{"train","valid","test"}`` mapping of index lists against ``n_rows``.

    Every index must be an integer in ``[0, n_rows)``, appear once, and the three parts
    must be disjoint; otherwise DataError names the part and the offending indices.
    """
    if not isinstance(parts, Mapping):
        raise DataError(f"a split must be a JSON object with keys {list(PARTS)}", path=source)
    missing = [p for p in PARTS if p not in parts]
    extra = [k for k in parts if k not in PARTS]
    if missing or extra:
        raise DataError(f"split keys must be exactly {list(PARTS)}; missing {missing}, unexpected {extra}", path=source)
    arrays = {}
    for part in PARTS:
        values = parts[part]
        if not isinstance(values, (list, tuple, np.ndarray)):
            raise DataError(f"{part!r} must be a list of row indices", path=source)
        bad = [v for v in values if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))]
        if bad:
            raise DataError(f"{part!r} holds non-integer indices, e.g. {bad[:3]}", path=source)
        arr = np.asarray(values, dtype=np.int64)
        out = arr[(arr < 0) | (arr >= n_rows)]
        if out.size:
            raise DataError(
                f"{part!r} holds indices out of range for {n_rows} rows (valid: 0..{n_rows - 1}): "
                f"{sorted(set(out.tolist()))[:5]}",
                path=source,
            )
        uniq, counts = np.unique(arr, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"{part!r} repeats indices {uniq[counts > 1][:5].tolist()}", path=source)
        arrays[part] = arr
    for i, a in enumerate(PARTS):
        for b in PARTS[i + 1 :]:
            common = np.intersect1d(arrays[a], arrays[b])
            if common.size:
                raise DataError(
                    f"parts {a!r} and {b!r} overlap in {common.size} indices, e.g. {common[:5].tolist()}",
                    path=source,
                )
    return _split_from_lists(arrays["train"], arrays["valid"], arrays["test"])


def to_positions(split: Split, row_index: np.ndarray, duplicates: Sequence[np.ndarray] = ()) -> MappedSplit:
    """Map a split of file rows onto task positions (``row_index[pos] = row``).

    ``duplicates`` are groups of file rows holding one molecule (``Task.duplicates``). A
    row of a merged group (policy ``first`` / ``mean``: one row of the group is kept)
    follows its kept twin, so it indexes that molecule. A molecule reached from several
    parts stays in the earliest of train, valid, test only; its rows in later parts are
    returned per part in ``MappedSplit.moved``. Rows with no position (invalid SMILES,
    bad label) are dropped and returned per part in ``MappedSplit.dropped``.
    """
    row_index = np.asarray(row_index, dtype=np.int64)
    highest = [row_index.max(initial=-1), *(getattr(split, p).max(initial=-1) for p in PARTS)]
    highest += [group.max(initial=-1) for group in duplicates]
    lookup = np.full(int(max(highest)) + 1, -1, dtype=np.int64)
    lookup[row_index] = np.arange(len(row_index))
    for group in duplicates:
        kept = lookup[group][lookup[group] >= 0]
        if len(kept) == 1:  # merged: every row of the group indexes the kept molecule
            lookup[group] = kept[0]
    mapped: dict[str, np.ndarray] = {}
    dropped: dict[str, np.ndarray] = {}
    moved: dict[str, np.ndarray] = {}
    taken = np.zeros(len(row_index), dtype=bool)
    for part in PARTS:
        rows = getattr(split, part)
        pos = lookup[rows]
        if (pos < 0).any():
            dropped[part] = rows[pos < 0]
        earlier = (pos >= 0) & taken[np.maximum(pos, 0)]
        if earlier.any():
            moved[part] = rows[earlier]
        mapped[part] = np.unique(pos[(pos >= 0) & ~earlier])
        taken[mapped[part]] = True
    return MappedSplit(_split_from_lists(mapped["train"], mapped["valid"], mapped["test"]), dropped, moved)


def resolve_size(size: int | float, available: int, what: str) -> int:
    """An int count, or a float fraction of ``available`` (0 < f <= 1), as a count >= 1."""
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{what} must be an int count or a float fraction, got {size!r}")
    if isinstance(size, (float, np.floating)):
        if not 0.0 < size <= 1.0:
            raise ConfigError(f"{what} as a fraction must lie in (0, 1], got {size}")
        count = int(size * available)
    else:
        count = int(size)
    if count < 1:
        raise ConfigError(f"{what}={size!r} gives {count} points out of {available}; need at least 1")
    return count


def w2s_split(
    train_idx: Sequence[int] | np.ndarray, n_weak: int | float, n_strong: int | float, seed: int = 0
) -> W2SSplit:
    """Two disjoint random subsets of ``train_idx``: D_w (``n_weak``) and D_s (``n_strong``).

    Sizes are counts or fractions of the training part. One seeded permutation is drawn;
    D_w is taken from its front and D_s from its back, so for a fixed seed a larger
    D_w (or D_s) contains the smaller one.
    """
    train = np.asarray(train_idx, dtype=np.int64)
    nw = resolve_size(n_weak, len(train), "n_weak")
    ns = resolve_size(n_strong, len(train), "n_strong")
    if nw + ns > len(train):
        raise ConfigError(f"n_weak + n_strong = {nw} + {ns} = {nw + ns} exceeds the {len(train)} training points")
    order = np.random.default_rng(seed).permutation(len(train))
    return W2SSplit(weak=np.sort(train[order[:nw]]), strong=np.sort(train[order[len(train) - ns :]]))


def _split_from_lists(
    train: Sequence[int] | np.ndarray, valid: Sequence[int] | np.ndarray, test: Sequence[int] | np.ndarray
) -> Split:
    return Split(*(np.sort(np.asarray(part, dtype=np.int64)) for part in (train, valid, test)))
