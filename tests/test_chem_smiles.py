"""SMILES parsing, canonicalisation, standardisation and invalid-SMILES reporting."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem

from molw2s.chem.smiles import InvalidSmiles, canonicalize, parse_smiles
from molw2s.chem.standardize import StandardizeOptions
from molw2s.config import build_model
from molw2s.errors import ConfigError, DataError

VALID = ["OCC", "C(O)C", "c1ccccc1O", "C[C@H](N)C(=O)O", "C/C=C/C", "CC(=O)[O-].[Na+]"]


def test_canonical_matches_rdkit_reference():
    for smi in VALID:
        assert canonicalize(smi) == Chem.MolToSmiles(Chem.MolFromSmiles(smi))
    assert canonicalize("OCC") == canonicalize("C(O)C") == "CCO"


def test_parse_keeps_order_and_rows_of_valid_inputs():
    inputs = ["CCO", "xyz", "c1ccccc1", "", "C1CC", "CC(C)(C)(C)(C)C", "c1cccc1", "  CCN  ", None]
    parsed = parse_smiles(inputs)
    assert parsed.smiles == ["CCO", "c1ccccc1", "CCN"]
    assert parsed.index.tolist() == [0, 2, 7]
    assert parsed.index.dtype == np.int64
    reasons = {item.row: item.reason for item in parsed.invalid}
    assert sorted(reasons) == [1, 3, 4, 5, 6, 8]
    assert "syntax error" in reasons[1] and "position 1" in reasons[1]
    assert reasons[3] == "empty SMILES"
    assert "unclosed ring" in reasons[4]
    assert "valence" in reasons[5]
    assert "kekulize" in reasons[6]
    assert "not a string" in reasons[8]
    report = parsed.report()
    assert "6 of 9 SMILES invalid" in report and "row 1: 'xyz'" in report


def test_worker_processes_give_the_same_parse(monkeypatch):
    """Chunks parsed in two processes merge into the single-process result: same canonical
    SMILES, rows and invalid entries (rows shifted back to input rows)."""
    import molw2s.chem.smiles as smiles_module

    monkeypatch.setattr(smiles_module, "PARSE_CHUNK", 7)
    monkeypatch.setattr(smiles_module, "PARALLEL_PARSE_FROM", 10)
    inputs = (["CCO", "xyz", "c1ccccc1", "", "C1CC", "C" * 30, "CC(=O)[O-].[Na+]", "CC(C)(C)(C)(C)C"] * 6)[:45]
    options = {"standardize": StandardizeOptions(), "max_heavy_atoms": 20}
    one, two = parse_smiles(inputs, **options), parse_smiles(inputs, n_jobs=2, **options)
    assert two.smiles == one.smiles and two.index.tolist() == one.index.tolist() and two.n_input == 45
    assert [(b.row, b.smiles, b.reason) for b in two.invalid] == [(b.row, b.smiles, b.reason) for b in one.invalid]
    reasons = {b.row: b.reason for b in two.invalid}
    assert "syntax error" in reasons[41] and "too large" in reasons[37] and "unclosed ring" in reasons[44]


def test_invalid_smiles_do_not_reach_the_terminal(capfd):
    parse_smiles(["xyz", "C1CC"])
    assert "SMILES Parse Error" not in capfd.readouterr().err


def test_strict_raises_listing_rows_and_source():
    with pytest.raises(DataError) as exc:
        parse_smiles(["CCO", "C1CC", "CC"], strict=True, source="mols.csv")
    msg = str(exc.value)
    assert "mols.csv" in msg and "row 1" in msg and "C1CC" in msg
    assert parse_smiles(["CCO"], strict=True).smiles == ["CCO"]


def test_invalid_str_with_line():
    item = InvalidSmiles(3, "xx", "bad", line=5)
    assert str(item) == "row 3 (line 5): 'xx': bad"


def test_salt_stripping_and_neutralisation():
    salt = "CC(=O)[O-].[Na+]"
    assert canonicalize(salt) == "CC(=O)[O-].[Na+]"  # default: unchanged molecule
    assert canonicalize(salt, StandardizeOptions(largest_fragment=True)) == "CC(=O)[O-]"
    both = StandardizeOptions(largest_fragment=True, neutralize=True)
    assert canonicalize(salt, both) == "CC(=O)O"
    assert canonicalize("C[NH+](C)C.[Cl-]", both) == "CN(C)C"
    assert canonicalize("[Cs+].[O-]C(=O)C", both) == "CC(=O)O"


def test_stereo_kept_by_default_and_removable():
    assert "@" in canonicalize("C[C@H](N)C(=O)O")
    assert "/" in canonicalize("C/C=C/C")
    flat = StandardizeOptions(keep_stereo=False)
    assert canonicalize("C[C@H](N)C(=O)O", flat) == canonicalize("CC(N)C(=O)O")
    assert canonicalize("C/C=C/C", flat) == "CC=CC"


def test_parse_applies_standardisation():
    options = StandardizeOptions(largest_fragment=True, neutralize=True, keep_stereo=False)
    parsed = parse_smiles(["CC(=O)[O-].[Na+]", "C[C@H](N)C(=O)O"], standardize=options)
    assert parsed.smiles == ["CC(=O)O", "CC(N)C(=O)O"]


def test_standardize_options_reject_unknown_keys():
    with pytest.raises(ConfigError, match="largest_fragment"):
        build_model(StandardizeOptions, {"largest_fragmnet": True})


def test_rdkit_without_log_capture_still_reports(monkeypatch, capfd):
    from rdkit import rdBase

    monkeypatch.delattr(rdBase, "CaptureErrorLog")
    parsed = parse_smiles(["CCO", "C1CC"])
    assert parsed.smiles == ["CCO"] and parsed.invalid[0].reason == "RDKit could not parse it"
    assert "SMILES Parse Error" not in capfd.readouterr().err
