"""RDKit 2D descriptors: values against the per-molecule RDKit reference, non-finite repair."""

from __future__ import annotations

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors

from molw2s.chem.descriptors import compute_descriptors, descriptor_names, fill_nonfinite

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C[Hg]C", "not-a-smiles", "[Na+].[Cl-]"]


def test_names_are_rdkit_descriptor_list():
    names = descriptor_names()
    assert names == [n for n, _ in Descriptors._descList]
    assert len(names) >= 200 and len(set(names)) == len(names)


def test_values_match_naive_rdkit_loop_and_repairs_are_counted():
    table = compute_descriptors(SMILES)
    names = table.names
    assert table.values.shape == (len(SMILES), len(names)) and table.values.dtype == np.float32
    assert np.isfinite(table.values).all()
    assert table.failed_rows == [4]
    for i in (0, 1, 2):  # molecules whose descriptors are all finite: exact agreement
        ref = Descriptors.CalcMolDescriptors(Chem.MolFromSmiles(SMILES[i]))
        np.testing.assert_allclose(table.values[i], np.float32([ref[n] for n in names]), rtol=1e-6)
    # C[Hg]C: Gasteiger charges fail (partial charges, BCUT2D); [Na+].[Cl-]: BCUT2D fails
    assert table.n_nonfinite["MaxPartialCharge"] == 1
    assert table.n_nonfinite["BCUT2D_MWHI"] == 2
    assert all(v >= 1 for v in table.n_nonfinite.values())
    j = names.index("MaxPartialCharge")
    finite = [table.values[i, j] for i in (0, 1, 2, 5)]
    assert table.values[3, j] == np.float32(np.median(finite))
    assert "MaxPartialCharge" in table.report()


def test_fill_nonfinite_known_answer():
    big = 1e300  # finite in float64, overflows float32
    raw = np.array(
        [
            [1.0, np.nan, 5.0],
            [3.0, np.nan, np.inf],
            [np.nan, np.nan, big],
            [7.0, np.nan, -1.0],
        ]
    )
    values, counts = fill_nonfinite(raw, skip_rows=np.array([3]))
    expected = np.array([[1, 0, 5], [3, 0, 2], [3, 0, 2], [7, 0, -1]], dtype=np.float32)
    np.testing.assert_array_equal(values, expected)
    assert values.dtype == np.float32
    assert counts.tolist() == [1, 3, 2]  # row 3 (skipped) is not counted


def test_parallel_equals_serial():
    smiles = ["CCO", "c1ccccc1", "CCN(CC)CC", "OC(=O)c1ccccc1", "xx", "C1CCCCC1"] * 3
    serial = compute_descriptors(smiles)
    parallel = compute_descriptors(smiles, n_jobs=2)
    np.testing.assert_array_equal(serial.values, parallel.values)
    assert serial.failed_rows == parallel.failed_rows == [4, 10, 16]


def test_empty_input():
    table = compute_descriptors([])
    assert table.values.shape == (0, len(descriptor_names())) and table.failed_rows == []


def test_a_molecule_over_the_time_limit_is_skipped_not_waited_for():
    import time

    slow = "C" * 300  # RDKit's Ipc makes a long chain take over a second
    start = time.perf_counter()
    table = compute_descriptors(["CCO", slow, "c1ccccc1"], timeout=0.3)
    assert table.timed_out == [1] and table.failed_rows == [1]
    assert np.isfinite(table.values).all() and "time limit" in table.report()
    assert time.perf_counter() - start < 30
    again = compute_descriptors(["CCO", "c1ccccc1"], timeout=0.3)  # small molecules: in-process, no limit hit
    np.testing.assert_array_equal(again.values, table.values[[0, 2]])
