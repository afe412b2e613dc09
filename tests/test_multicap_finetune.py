"""The finetuned multi-capability student (``student.kind: finetune``) on a tiny checkpoint:
what it predicts, its cache, stage 2 from a cached stage 1, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from molw2s.data.tasks import load_task
from molw2s.errors import DataError
from molw2s.finetuning.config import FinetuneSettings
from molw2s.multicap import finetune_student
from molw2s.multicap.capability import Capability
from molw2s.multicap.config import StudentConfig
from molw2s.multicap.finetune_student import FinetuneSetup, FinetuneStudent
from molw2s.multicap.students import make_student

N = 60
CONFIG = StudentConfig(kind="finetune", finetune=FinetuneSettings(epochs=3, batch_size=16, lr=1e-3, patience=None))


@pytest.fixture(scope="module")
def caps() -> list[Capability]:
    """Two capabilities (logP, TPSA) on the same 60 NCI molecules: D_w 0-9, D_s 10-44, test 45-59."""
    out = []
    for name in ("nci_logp", "nci_tpsa"):
        task = load_task(name)
        smiles, y = list(task.smiles[:N]), np.asarray(task.y[:N])
        H = np.random.default_rng(0).standard_normal((N, 3))
        out.append(Capability(name, H, H, y, np.arange(10), np.arange(10, 45), np.arange(45, N), smiles))
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, make_tiny_checkpoint, caps):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ft") / "model", list(caps[0].smiles))


def gold(caps: list[Capability]) -> dict:
    return {c.name: (c.strong, c.y[c.strong]) for c in caps}


def test_finetune_student_predicts_every_capability_on_d_s_and_test(caps, checkpoint, tmp_path):
    student = make_student(CONFIG, caps, FinetuneSetup(checkpoint, tmp_path)).fit(gold(caps))
    for k, cap in enumerate(caps):
        pred = student.predict(cap.name, cap.test)
        assert pred.shape == (len(cap.test),) and np.isfinite(pred).all()
        # the cached predictions are the model's own, output k for capability k
        model = student.trained_model()
        np.testing.assert_allclose(pred, model.predict([cap.smiles[i] for i in cap.test], output=k), rtol=1e-5)
        with pytest.raises(DataError, match="D_s and the test part only"):
            student.predict(cap.name, cap.weak)
    assert (tmp_path / f"{student.key}.json").is_file()
    assert not (tmp_path / "state" / student.key).exists()  # the resume state goes once the run is done


def test_finetune_student_outputs_are_in_each_capabilitys_units(caps, checkpoint):
    student = FinetuneStudent(CONFIG, caps, FinetuneSetup(checkpoint)).fit(gold(caps))
    logp, tpsa = (student.predict(c.name, c.strong).mean() for c in caps)
    assert abs(logp - caps[0].y[caps[0].strong].mean()) < 3 * caps[0].y.std()
    assert abs(tpsa - caps[1].y[caps[1].strong].mean()) < 3 * caps[1].y.std()
    assert tpsa > logp + 10  # TPSA (tens of A^2) and logP (units) come out on their own scales


def test_finetune_student_reads_a_finished_run_from_its_cache(caps, checkpoint, tmp_path, monkeypatch):
    setup = FinetuneSetup(checkpoint, tmp_path)
    first = FinetuneStudent(CONFIG, caps, setup).fit(gold(caps))

    def fail(*args, **kwargs):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(finetune_student, "finetune_regressor", fail)
    again = FinetuneStudent(CONFIG, caps, setup).fit(gold(caps))
    for cap in caps:
        np.testing.assert_array_equal(again.predict(cap.name, cap.test), first.predict(cap.name, cap.test))
    other_labels = {c.name: (c.strong, c.y[c.strong] + 1.0) for c in caps}
    with pytest.raises(AssertionError, match="trained again"):  # other labels: another key, a new run
        FinetuneStudent(CONFIG, caps, setup).fit(other_labels)


def test_stage_two_from_a_cached_stage_one_retrains_stage_one_identically(caps, checkpoint, tmp_path):
    setup = FinetuneSetup(checkpoint, tmp_path)
    fresh = FinetuneStudent(CONFIG, caps, setup).fit(gold(caps))
    cached = FinetuneStudent(CONFIG, caps, setup).fit(gold(caps))
    assert cached._model is None  # read from the cache: no weights yet
    subset = {caps[0].name: (caps[0].strong[:20], caps[0].y[caps[0].strong[:20]] + 2.0)}
    refined_fresh = fresh.refine(subset)
    refined_cached = cached.refine(subset)
    assert refined_cached.key == refined_fresh.key != fresh.key
    name, test = caps[0].name, caps[0].test
    np.testing.assert_allclose(refined_cached.predict(name, test), refined_fresh.predict(name, test), rtol=1e-5)
    assert not np.allclose(refined_fresh.predict(name, test), fresh.predict(name, test))  # stage 2 moved it


def test_finetune_student_errors_are_clear(caps, checkpoint, tmp_path):
    with pytest.raises(DataError, match="needs a strong checkpoint"):
        make_student(CONFIG, caps)
    with pytest.raises(DataError, match="not a model checkpoint"):
        FinetuneSetup(tmp_path)
    no_smiles = Capability("bare", caps[0].H_w, caps[0].H_s, caps[0].y, caps[0].weak, caps[0].strong, caps[0].test)
    with pytest.raises(DataError, match="have none"):
        FinetuneStudent(CONFIG, [no_smiles], FinetuneSetup(checkpoint))
    student = FinetuneStudent(CONFIG, caps, FinetuneSetup(checkpoint)).fit(gold(caps[:1]))
    with pytest.raises(DataError, match="did not learn capability nci_tpsa"):
        student.predict("nci_tpsa", caps[1].test)
    with pytest.raises(DataError, match="stage 1 did not train"):
        student.refine(gold(caps[1:]))
    with pytest.raises(DataError, match="not built for capabilities"):
        FinetuneStudent(CONFIG, caps[:1], FinetuneSetup(checkpoint)).fit(gold(caps))
