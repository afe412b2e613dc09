"""The data sets molw2s knows by name: where their files are found or downloaded from.

Task files exist in two layouts with the same columns and row order: ChemBench
(``ESOL.csv.gz`` ...) and MoleculeNet (``delaney-processed.csv`` ...). Both are searched.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from molw2s.errors import ConfigError

MOLECULENET_URL = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/"
FIGSHARE_URL = "https://ndownloader.figshare.com/files/"

#: sub-folder of a data directory (and of the cache) holding each kind of file
TASK_SUBDIR = "moleculenet"
CORPUS_SUBDIR = "corpora"
SPLIT_SUBDIR = "splits"


@dataclass(frozen=True)
class TaskSource:
    """A labelled regression task shipped as a CSV file."""

    name: str
    filenames: tuple[str, ...]
    url: str
    smiles_col: str
    label_col: str
    n_rows: int
    description: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class CorpusSource:
    """An unlabelled SMILES corpus: a file name, and where known a URL and md5."""

    name: str
    filename: str
    smiles_col: str | None
    url: str | None = None
    md5: str | None = None
    description: str = ""


TASK_SOURCES: dict[str, TaskSource] = {
    "ESOL": TaskSource(
        "ESOL",
        ("ESOL.csv.gz", "ESOL.csv", "delaney-processed.csv", "delaney-processed.csv.gz"),
        MOLECULENET_URL + "delaney-processed.csv",
        "smiles",
        "measured log solubility in mols per litre",
        1128,
        "aqueous solubility, log10(mol/L) (Delaney 2004)",
        ("delaney",),
    ),
    "FreeSolv": TaskSource(
        "FreeSolv",
        ("FreeSolv.csv.gz", "FreeSolv.csv", "SAMPL.csv", "SAMPL.csv.gz"),
        MOLECULENET_URL + "SAMPL.csv",
        "smiles",
        "expt",
        642,
        "hydration free energy, kcal/mol (Mobley & Guthrie 2014)",
        ("sampl",),
    ),
    "Lipop": TaskSource(
        "Lipop",
        ("Lipop.csv.gz", "Lipop.csv", "Lipophilicity.csv", "Lipophilicity.csv.gz"),
        MOLECULENET_URL + "Lipophilicity.csv",
        "smiles",
        "exp",
        4200,
        "octanol/water distribution coefficient logD at pH 7.4 (ChEMBL)",
        ("lipophilicity", "lipo"),
    ),
}

#: demo tasks: an RDKit property computed on the nci5k molecules (name -> descriptor, meaning)
DEMO_TASKS: dict[str, tuple[str, str]] = {
    "nci_logp": ("MolLogP", "Crippen logP computed by RDKit on the NCI 5k molecules"),
    "nci_tpsa": ("TPSA", "topological polar surface area (A^2) computed by RDKit on NCI 5k"),
    "nci_mr": ("MolMR", "Crippen molar refractivity computed by RDKit on NCI 5k"),
    "nci_qed": ("qed", "QED drug-likeness (Bickerton et al. 2012, 0..1) computed by RDKit on NCI 5k"),
    "nci_fsp3": ("FractionCSP3", "fraction of sp3 carbons among all carbons, computed by RDKit on NCI 5k"),
    "nci_bertz": ("BertzCT", "Bertz molecular complexity index computed by RDKit on NCI 5k"),
}

_GUACAMOL = {
    "train": ("13612760", "05ad85d871958a05c02ab51a4fde8530"),
    "valid": ("13612766", "e53db4bff7dc4784123ae6df72e3b1f0"),
    "test": ("13612757", "677b757ccec4809febd83850b43e1616"),
    "all": ("13612745", "7d45bc95c33c10cb96ef5e78c38ac0b6"),
}

CORPUS_SOURCES: dict[str, CorpusSource] = {
    f"guacamol:{split}": CorpusSource(
        f"guacamol:{split}",
        f"guacamol_v1_{split}.smiles",
        None,
        FIGSHARE_URL + file_id,
        md5,
        f"GuacaMol {split} split (ChEMBL 24, Brown et al. 2019), figshare file {file_id}",
    )
    for split, (file_id, md5) in _GUACAMOL.items()
}
CORPUS_SOURCES["moses"] = CorpusSource(
    "moses",
    "moses_train.csv.gz",
    "SMILES",
    description="MOSES training set (ZINC, 1.58M); local file only (ships in the molsets package)",
)

#: corpus name aliases
CORPUS_ALIASES = {"guacamol": "guacamol:train"}
NCI5K = "nci5k"


def nci5k_path() -> Path:
    """RDKit's bundled 4,999 NCI SMILES (``rdkit/Data/NCI/first_5K.smi``)."""
    from rdkit import RDConfig

    return Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"


def task_names() -> list[str]:
    """Every task name accepted by :func:`molw2s.data.tasks.load_task` (besides a CSV path)."""
    return [*TASK_SOURCES, *DEMO_TASKS]


def corpus_names() -> list[str]:
    """Every corpus name accepted by :func:`molw2s.data.corpora.load_corpus` (besides a path)."""
    return [NCI5K, *CORPUS_ALIASES, *CORPUS_SOURCES]


def lookup_name(name: str, valid: list[str], aliases: dict[str, str]) -> str | None:
    """The canonical spelling of ``name`` (any case, or an alias), or None if unknown."""
    return _lookup_table(valid, aliases).get(name.strip().lower())


def resolve_name(name: str, valid: list[str], aliases: dict[str, str], kind: str) -> str:
    """Map ``name`` (any case, or an alias) to its canonical spelling, or raise naming the valid ones."""
    found = lookup_name(name, valid, aliases)
    if found is not None:
        return found
    lookup = _lookup_table(valid, aliases)
    close = difflib.get_close_matches(name.lower(), list(lookup), n=1)
    hint = f" (did you mean {lookup[close[0]]!r}?)" if close else ""
    raise ConfigError(f"unknown {kind} {name!r}{hint}; valid {kind}s: {', '.join(valid)}, or a path to a file")


def _lookup_table(valid: list[str], aliases: dict[str, str]) -> dict[str, str]:
    return {v.lower(): v for v in valid} | {a.lower(): v for a, v in aliases.items()}


def task_aliases() -> dict[str, str]:
    """Alias -> task name for the file tasks (e.g. 'lipophilicity' -> 'Lipop')."""
    return {alias: src.name for src in TASK_SOURCES.values() for alias in src.aliases}
