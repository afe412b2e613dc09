"""End-to-end finetuning: it learns a learnable label, restores the best epoch, resumes a
killed run bit for bit, is identical when rerun, and fails clearly on bad input; the
frozen-feature baselines equal a direct scikit-learn fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler
from transformers import BertConfig, BertModel

from molw2s.data.tasks import load_task
from molw2s.encoders.model_files import load_encoder
from molw2s.encoders.tokenizer import save_tokenizer
from molw2s.errors import DataError, MolW2SError, TrainingError
from molw2s.finetuning import trainer
from molw2s.finetuning.baselines import fit_baseline
from molw2s.finetuning.config import BaselineSettings, FinetuneSettings
from molw2s.finetuning.trainer import LabelledSmiles, finetune_regressor
from molw2s.training import make_adamw

FAST = FinetuneSettings(epochs=6, batch_size=16, lr=2e-3, warmup_frac=0.0, patience=None, dropout=0.0, device="cpu")


@pytest.fixture(scope="module")
def task():
    return load_task("nci_logp")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, task, make_tiny_checkpoint) -> Path:
    """A tiny randomly initialised MolBERT checkpoint whose vocabulary covers the task."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ft_model"), task.smiles, layers=2, hidden=32)


def _parts(task, n_train: int = 240, n_valid: int = 80):
    smiles, y = np.asarray(task.smiles, dtype=object), task.y
    train = LabelledSmiles.of(list(smiles[:n_train]), y[:n_train])
    valid = LabelledSmiles.of(list(smiles[n_train : n_train + n_valid]), y[n_train : n_train + n_valid])
    return train, valid


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def test_finetuning_learns_a_learnable_label(model_dir, task):
    train, valid = _parts(task)
    fitted = finetune_regressor(model_dir, train, valid, FAST, seed=0)
    before = _rmse(np.full(len(valid), train.y.mean()), valid.y)  # the untrained head predicts ~ the mean
    after = _rmse(fitted.predict(valid.smiles), valid.y)
    assert after < 0.8 * before, (before, after)
    assert fitted.history[0]["valid_rmse"] > after


def test_best_epoch_is_restored_and_early_stopping_counts_patience(model_dir, task):
    train, valid = _parts(task)
    settings = FAST.model_copy(update={"epochs": 12, "lr": 5e-3, "patience": 2})
    fitted = finetune_regressor(model_dir, train, valid, settings, seed=1)
    curve = [h["valid_rmse"] for h in fitted.history]
    assert fitted.best_epoch == int(np.argmin(curve)) + 1
    assert _rmse(fitted.predict(valid.smiles), valid.y) == pytest.approx(min(curve), rel=1e-6)
    if fitted.stopped_early:
        assert len(curve) == fitted.best_epoch + 2
    else:
        assert len(curve) == 12


def test_killed_run_resumes_to_identical_weights(model_dir, task, tmp_path, monkeypatch):
    train, valid = _parts(task, 96, 32)
    settings = FAST.model_copy(update={"epochs": 4, "dropout": 0.2})
    reference = finetune_regressor(model_dir, train, valid, settings, seed=3)
    saves = {"n": 0}
    real_save = trainer._save_state

    def save_then_die(path, **state):
        real_save(path, **state)
        saves["n"] += 1
        if saves["n"] == 2:
            raise KeyboardInterrupt  # killed right after epoch 2 was saved

    monkeypatch.setattr(trainer, "_save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        finetune_regressor(model_dir, train, valid, settings, seed=3, state_dir=tmp_path)
    monkeypatch.setattr(trainer, "_save_state", real_save)
    torch.manual_seed(12345)  # the global generator's state must not matter: it is restored
    resumed = finetune_regressor(model_dir, train, valid, settings, seed=3, state_dir=tmp_path)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_non_finite_loss_names_the_step_and_keeps_the_last_good_state(model_dir, task, tmp_path, monkeypatch):
    train, valid = _parts(task, 64, 16)
    settings = FAST.model_copy(update={"epochs": 3})  # 4 batches per epoch
    forward = trainer.RegressionModel.forward
    calls = {"n": 0}

    def poisoned(self, input_ids, attention_mask):
        out = forward(self, input_ids, attention_mask)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 6:  # epoch 2, batch 2
                return out * float("nan")
        return out

    monkeypatch.setattr(trainer.RegressionModel, "forward", poisoned)
    with pytest.raises(TrainingError, match=r"step 6 \(epoch 2, batch 2\).*after epoch 1 is kept"):
        finetune_regressor(model_dir, train, valid, settings, seed=0, state_dir=tmp_path)
    assert (tmp_path / trainer.STATE_FILE).is_file()


def test_bad_inputs_get_clear_errors(model_dir, task, tmp_path):
    train, valid = _parts(task, 64, 16)
    with pytest.raises(MolW2SError, match="no such model directory"):
        finetune_regressor(tmp_path / "missing", train, valid, FAST)
    (tmp_path / "incomplete").mkdir()
    (tmp_path / "incomplete" / "config.json").write_text("{}")
    with pytest.raises(MolW2SError, match="no model.safetensors"):
        finetune_regressor(tmp_path / "incomplete", train, valid, FAST)
    with pytest.raises(DataError, match="validation part"):
        finetune_regressor(model_dir, train, LabelledSmiles.of([], []), FAST)
    constant = LabelledSmiles.of(train.smiles, np.ones(len(train)))
    with pytest.raises(DataError, match="constant"):
        finetune_regressor(model_dir, constant, valid, FAST)
    with pytest.raises(DataError, match="NaN"):
        LabelledSmiles.of(["CCO", "CCN"], [1.0, float("nan")])


def test_a_plain_hugging_face_bert_directory_loads_and_finetunes(model_dir, task, tmp_path):
    tok = load_encoder(model_dir)[1]
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(tmp_path))
    save_tokenizer(tok, tmp_path)
    encoder, _ = load_encoder(tmp_path)
    assert encoder.config.hidden_size == 16
    train, valid = _parts(task, 64, 16)
    fitted = finetune_regressor(tmp_path, train, valid, FAST.model_copy(update={"epochs": 1}))
    assert np.isfinite(fitted.predict(valid.smiles)).all()


def test_ridge_baseline_picks_alpha_on_validation_then_refits_on_train_and_valid():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8))
    y = X @ rng.normal(size=8) + 0.3 * rng.normal(size=120) + 5.0
    settings = BaselineSettings(ridge_alphas=[0.01, 1.0, 1e4])
    fitted = fit_baseline("ridge", X[:80], y[:80], X[80:100], y[80:100], settings)
    assert fitted.value in (0.01, 1.0)  # the huge alpha cannot win on a clean linear problem
    # independent reference: scale X and y on train + valid, ridge, unscale
    Xs, ys = StandardScaler().fit(X[:100]), StandardScaler().fit(y[:100, None])
    ref = Ridge(alpha=fitted.value).fit(Xs.transform(X[:100]), ys.transform(y[:100, None]).ravel())
    expected = ys.inverse_transform(ref.predict(Xs.transform(X[100:]))[:, None]).ravel()
    np.testing.assert_allclose(fitted.predict(X[100:]), expected, rtol=1e-8)
    svr = fit_baseline("svr", X[:80], y[:80], X[80:100], y[80:100])
    assert _rmse(svr.predict(X[100:]), y[100:]) < y[100:].std()


def test_baselines_reject_non_finite_features():
    X = np.ones((10, 2))
    X[3, 1] = np.nan
    with pytest.raises(DataError, match="training features"):
        fit_baseline("ridge", X, np.arange(10.0), np.ones((2, 2)), np.ones(2))


def test_freezing_keeps_the_bottom_blocks_fixed(model_dir, task):
    train, valid = _parts(task, 64, 16)
    original, _ = load_encoder(model_dir)
    fitted = finetune_regressor(model_dir, train, valid, FAST.model_copy(update={"epochs": 1, "freeze": 2}))
    tuned = fitted.model.encoder
    for name, p in original.embeddings.named_parameters():
        assert torch.equal(p, dict(tuned.embeddings.named_parameters())[name]), name
    first, last = (dict(original.encoder.layer[i].named_parameters()) for i in (0, 1))
    assert all(torch.equal(p, first[n]) for n, p in tuned.encoder.layer[0].named_parameters())
    assert any(not torch.equal(p, last[n]) for n, p in tuned.encoder.layer[1].named_parameters())


def test_masked_mse_is_the_mean_over_outputs_of_each_outputs_mse():
    rng = np.random.default_rng(0)
    output = np.array([0, 1, 1, 2, 0, 1, 1, 1])
    pred, target = rng.normal(size=(8, 3)), rng.normal(size=8)
    weight = trainer.output_weights(output)
    got = trainer.masked_mse(
        torch.as_tensor(pred), torch.as_tensor(output), torch.as_tensor(target), torch.as_tensor(weight)
    )
    naive = np.mean([np.mean((pred[output == k, k] - target[output == k]) ** 2) for k in range(3)])
    assert float(got) == pytest.approx(naive, rel=1e-12)


def test_outputs_absent_from_the_training_part_do_not_dilute_the_loss():
    rng = np.random.default_rng(1)
    output = np.array([0, 0, 2, 2, 2])  # a stage 2 on outputs 0 and 2 of a 3-output model
    pred, target = rng.normal(size=(5, 3)), rng.normal(size=5)
    weight = trainer.output_weights(output)
    got = trainer.masked_mse(
        torch.as_tensor(pred), torch.as_tensor(output), torch.as_tensor(target), torch.as_tensor(weight)
    )
    naive = np.mean([np.mean((pred[output == k, k] - target[output == k]) ** 2) for k in (0, 2)])
    assert float(got) == pytest.approx(naive, rel=1e-12)
    np.testing.assert_array_equal(trainer.output_weights(np.zeros(4, dtype=int)), np.ones(4))


def _two_tasks(task, n_train: int, n_valid: int):
    """logP (output 0) on the first molecules and a scaled heavy-atom count (output 1,
    other units) on the next ones: no molecule in common."""
    from rdkit import Chem

    smiles = list(task.smiles)
    atoms = np.array([Chem.MolFromSmiles(s).GetNumHeavyAtoms() * 10.0 for s in smiles])
    a, b = slice(0, n_train), slice(n_train, 2 * n_train)
    va, vb = slice(2 * n_train, 2 * n_train + n_valid), slice(2 * n_train + n_valid, 2 * n_train + 2 * n_valid)
    train = LabelledSmiles.of(
        smiles[a] + smiles[b], np.r_[task.y[a], atoms[b]], np.r_[np.zeros(n_train, int), np.ones(n_train, int)]
    )
    valid = LabelledSmiles.of(
        smiles[va] + smiles[vb], np.r_[task.y[va], atoms[vb]], np.r_[np.zeros(n_valid, int), np.ones(n_valid, int)]
    )
    return train, valid


def test_two_outputs_are_learnt_jointly_each_in_its_own_units(model_dir, task):
    train, valid = _two_tasks(task, 150, 40)
    fitted = finetune_regressor(model_dir, train, valid, FAST.model_copy(update={"epochs": 8}), seed=0)
    assert fitted.n_outputs == 2
    for k in (0, 1):
        mine = valid.output == k
        y, own = valid.y[mine], train.y[train.output == k]
        assert fitted.label_mean[k] == pytest.approx(own.mean()) and fitted.label_std[k] == pytest.approx(own.std())
        pred = fitted.predict([s for s, m in zip(valid.smiles, mine, strict=True) if m], output=k)
        assert _rmse(pred, y) < 0.8 * _rmse(np.full(len(y), own.mean()), y), k
    last = fitted.history[fitted.best_epoch - 1]
    assert {"valid_rmse_0", "valid_rmse_1", "valid_score"} <= set(last)
    expected = np.mean([last[f"valid_rmse_{k}"] ** 2 / fitted.label_std[k] ** 2 for k in (0, 1)])
    assert last["valid_score"] == pytest.approx(expected, rel=1e-9)
    with pytest.raises(DataError, match="output 2 does not exist"):
        fitted.predict(valid.smiles[:2], output=2)


def test_stage_two_starts_from_the_model_and_the_anchor_holds_it(model_dir, task):
    train, valid = _parts(task, 96, 32)
    stage1 = finetune_regressor(model_dir, train, valid, FAST.model_copy(update={"epochs": 3}), seed=0)
    shifted = LabelledSmiles.of(train.smiles[:48], train.y[:48] + 3.0)
    settings = FAST.model_copy(update={"epochs": 2})

    def moved(fitted) -> float:
        start = stage1.model.state_dict()
        return sum(float(((v - start[k]) ** 2).sum()) for k, v in fitted.model.state_dict().items())

    free = finetune_regressor(model_dir, shifted, valid, settings, seed=0, start_from=stage1)
    held = finetune_regressor(model_dir, shifted, valid, settings, seed=0, start_from=stage1, anchor=100.0)
    np.testing.assert_array_equal(free.label_mean, stage1.label_mean)  # stage 1's standardisation is kept
    assert 0 < moved(held) < 0.5 * moved(free)
    fresh = finetune_regressor(model_dir, shifted, valid, settings, seed=0)
    assert moved(free) < moved(fresh)  # continuing from stage 1 stays closer to it than a fresh start


def test_each_output_needs_two_varying_training_labels(model_dir, task):
    train, valid = _two_tasks(task, 20, 5)
    lonely = LabelledSmiles.of(train.smiles[:21], train.y[:21], np.r_[np.zeros(20, int), [1]])
    with pytest.raises(DataError, match="output 1 has 1 training labels"):
        finetune_regressor(model_dir, lonely, valid, FAST)
    flat = LabelledSmiles.of(train.smiles, np.where(train.output == 1, 7.0, train.y), train.output)
    with pytest.raises(DataError, match="training labels of output 1 are constant"):
        finetune_regressor(model_dir, flat, valid, FAST)
    with pytest.raises(DataError, match="output indices"):
        LabelledSmiles.of(["CCO", "CCN"], [1.0, 2.0], [0])


def test_resume_restores_the_cuda_rng_states_it_saved(model_dir, task, tmp_path, monkeypatch):
    """On a GPU, dropout draws from the CUDA generators: their states are saved with each
    epoch and restored on resume (CUDA simulated on the CPU: two devices with known states)."""
    train, valid = _parts(task, 48, 16)
    settings = FAST.model_copy(update={"epochs": 2})
    states = [torch.arange(8, dtype=torch.uint8), torch.arange(8, 16, dtype=torch.uint8)]
    restored: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in states])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    real_save = trainer._save_state

    def save_then_die(path, **state):
        real_save(path, **state)
        raise KeyboardInterrupt  # killed right after epoch 1 was saved

    monkeypatch.setattr(trainer, "_save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        finetune_regressor(model_dir, train, valid, settings, seed=0, state_dir=tmp_path)
    saved = torch.load(tmp_path / trainer.STATE_FILE, weights_only=True)["rng"]
    assert sorted(saved) == ["torch_cpu", "torch_cuda0", "torch_cuda1"]
    assert all(torch.equal(saved[f"torch_cuda{i}"], s) for i, s in enumerate(states))
    monkeypatch.setattr(trainer, "_save_state", real_save)
    finetune_regressor(model_dir, train, valid, settings, seed=0, state_dir=tmp_path)
    assert len(restored) == 1
    assert all(torch.equal(a, b) for a, b in zip(restored[0], states, strict=True))


def test_a_training_step_does_not_wait_for_the_device(model_dir, task, monkeypatch):
    """No host sync in a finetuning step (the losses are checked once per epoch): no tensor
    is turned into a Python bool, number or list. The encoder is stubbed (embeddings, mean,
    head) so that only the trainer's code is watched; AdamW is the fused one CUDA uses."""
    train, valid = _parts(task, 32, 8)

    def stub_forward(self, input_ids, attention_mask):
        hidden = self.encoder.embeddings.word_embeddings(input_ids) * attention_mask[..., None]
        return self.head(self.dropout(hidden.sum(1)))

    monkeypatch.setattr(trainer.RegressionModel, "forward", stub_forward)
    monkeypatch.setattr(trainer, "make_adamw", lambda model, **kw: make_adamw(model, **{**kw, "fused": True}))
    run = trainer.RegressorTrainer(model_dir, train, valid, FAST, anchor=0.1)
    rows = np.arange(16)
    run.train_step(rows)  # warm-up: lazy initialisation may inspect values once
    calls: list[str] = []
    for name in ("__bool__", "item", "__float__", "tolist"):
        real = getattr(torch.Tensor, name)

        def spy(self, *args, _name=name, _real=real):
            calls.append(_name)
            return _real(self, *args)

        monkeypatch.setattr(torch.Tensor, name, spy)
    before = [p.detach().clone() for p in run.model.parameters()]
    loss = run.train_step(rows)
    monkeypatch.undo()
    assert calls == []
    assert loss.requires_grad is False and loss.ndim == 0
    assert any(not torch.equal(a, b) for a, b in zip(before, run.model.parameters(), strict=True))
