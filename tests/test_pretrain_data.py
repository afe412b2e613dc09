"""Pretraining data: bucketed batch order, sharding, padding, split, counts of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molw2s.data.config import CorpusSpec
from molw2s.encoders.padding import pad_batch
from molw2s.encoders.tokenizer import IGNORE_INDEX
from molw2s.pretraining.batches import bucketed_batches, shard_batches
from molw2s.pretraining.config import PretrainingDataConfig
from molw2s.pretraining.corpus import prepare_pretraining_data, split_corpus
from molw2s.pretraining.loader import make_batch


def _padding_fraction(batches: list[np.ndarray], lengths: np.ndarray) -> float:
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return 1.0 - sum(lengths[b].sum() for b in batches) / padded


def test_bucketed_batches_cover_each_index_once_and_cut_padding() -> None:
    lengths = np.random.default_rng(0).integers(10, 120, size=1000)
    batches = bucketed_batches(lengths, 16, seed=3, epoch=0, bucket_batches=10)
    flat = np.concatenate(batches)
    assert len(flat) == 1000 // 16 * 16 and len(set(flat.tolist())) == len(flat)  # drop_last: 8 left out
    assert all(len(b) == 16 for b in batches)
    random_batches = np.array_split(np.random.default_rng(1).permutation(1000)[: len(flat)], len(batches))
    assert _padding_fraction(batches, lengths) < 0.2 < _padding_fraction(random_batches, lengths)
    kept_all = bucketed_batches(lengths, 16, seed=3, epoch=0, drop_last=False)
    assert sorted(np.concatenate(kept_all).tolist()) == list(range(1000))


def test_batch_order_is_a_function_of_seed_and_epoch() -> None:
    lengths = np.arange(200) % 37
    a = bucketed_batches(lengths, 8, seed=1, epoch=2)
    b = bucketed_batches(lengths, 8, seed=1, epoch=2)
    c = bucketed_batches(lengths, 8, seed=1, epoch=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_shards_partition_the_batches_equally() -> None:
    batches = [np.array([i]) for i in range(11)]
    shards = [shard_batches(batches, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    got = sorted(int(b[0]) for s in shards for b in s)
    assert got == list(range(9))
    with pytest.raises(ValueError):
        shard_batches(batches, 3, 3)


def test_pad_batch_right_pads_and_rounds_up() -> None:
    ids, attention = pad_batch([[2, 5, 3], [2, 3]], pad_id=0, multiple_of=4)
    assert ids.tolist() == [[2, 5, 3, 0], [2, 3, 0, 0]]
    assert attention.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]


@pytest.mark.parametrize("multiple_of", [1, 8])
def test_pad_batch_equals_a_row_by_row_copy(multiple_of: int) -> None:
    rng = np.random.default_rng(3)
    sequences: list = [rng.integers(0, 50, size=int(n)) for n in rng.integers(1, 70, size=40)]
    sequences[::2] = [[int(x) for x in s] for s in sequences[::2]]  # lists and arrays, as callers pass both
    ids, attention = pad_batch(sequences, pad_id=-100, multiple_of=multiple_of)
    width = -(-max(len(s) for s in sequences) // multiple_of) * multiple_of
    assert ids.shape == attention.shape == (40, width) and ids.dtype == attention.dtype == torch.long
    for row, seq in enumerate(sequences):
        n = len(seq)
        assert ids[row, :n].tolist() == list(seq) and set(ids[row, n:].tolist()) <= {-100}
        assert attention[row].tolist() == [1] * n + [0] * (width - n)


def test_split_is_seeded_disjoint_and_capped() -> None:
    smiles = [f"C{'C' * i}O" for i in range(100)]
    cfg = PretrainingDataConfig(val_fraction=0.2, max_val=15)
    train, val = split_corpus(smiles, cfg)
    assert len(val) == 15 and len(train) == 85 and not set(train) & set(val)
    assert split_corpus(smiles, cfg) == (train, val)
    assert split_corpus(smiles, cfg.model_copy(update={"corpus": CorpusSpec(seed=1)}))[1] != val


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> str:
    """A small corpus with an invalid line, an over-long molecule and a rare element."""
    rows = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "OC(=O)c1ccccc1", "C1CCCCC1"] * 5
    rows += ["not_a_smiles", "C" * 60, "CC[Se]C"]
    path = tmp_path_factory.mktemp("corpus") / "corpus.smi"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_prepared_data_reports_invalid_overlong_and_unk(corpus_file: str) -> None:
    cfg = PretrainingDataConfig(
        corpus=corpus_file, val_fraction=0.2, max_length=40, min_freq=2, augment=False, physchem=False
    )
    data = prepare_pretraining_data(cfg, progress=False)
    rep = data.report
    assert rep.n_invalid == 1 and rep.n_corpus == 32
    assert rep.n_overlong == 1 and rep.overlong_policy == "truncate"
    se_in_train = any("[Se]" in s for s in data.train.smiles)
    # too rare for the vocabulary if seen in training; unseen if held out: [UNK] either way
    assert rep.dropped_tokens == ({"[Se]": 1} if se_in_train else {})
    assert rep.n_unk == 1
    assert rep.n_train + rep.n_val == 32
    assert max(data.train.lengths.max(), data.val.lengths.max()) == 40
    assert any("truncated: 1" in line for line in rep.lines())

    excluded = prepare_pretraining_data(cfg.model_copy(update={"overlong": "exclude"}), progress=False)
    assert excluded.report.n_overlong == 1 and excluded.report.n_train + excluded.report.n_val == 31
    assert "C" * 60 not in excluded.train.smiles + excluded.val.smiles


def test_held_out_masks_are_fixed_and_training_batches_reproducible(corpus_file: str) -> None:
    cfg = PretrainingDataConfig(corpus=corpus_file, val_fraction=0.2, max_length=64, physchem=True, descriptor_jobs=1)
    first = prepare_pretraining_data(cfg, progress=False)
    second = prepare_pretraining_data(cfg, progress=False)  # descriptors now come from the cache
    assert first.val_masked_ids == second.val_masked_ids and first.val_labels == second.val_labels
    assert first.fingerprint == second.fingerprint
    np.testing.assert_array_equal(first.train.physchem, second.train.physchem)
    assert first.physchem_stats is not None and len(first.physchem_stats.names) == first.train.physchem.shape[1]
    labels = np.concatenate([np.asarray(x) for x in first.val_labels])
    assert (labels != IGNORE_INDEX).any()

    rows = np.arange(6)
    a = make_batch(first, rows, seed=11)
    b = make_batch(first, rows, seed=11)
    c = make_batch(first, rows, seed=12)
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.input_ids, c.input_ids)  # new random SMILES and masks
    assert a.physchem.shape == (6, len(first.physchem_stats.names))
    assert int(a.attention_mask.sum(1).max()) == a.input_ids.shape[1]  # dynamic padding


def test_mixing_task_molecules_brings_their_unk_rate_to_zero(corpus_file: str, tmp_path) -> None:
    from molw2s.encoders.coverage import vocabulary_coverage
    from molw2s.io import content_hash

    task_csv = tmp_path / "charged.csv"
    task_csv.write_text("smiles,y\nC[N+](C)(C)C,1\n[O-]C(=O)c1ccccc1,2\nCCO,3\nF[C@H](Cl)Br,4\n")
    task_smiles = ["C[N+](C)(C)C", "[O-]C(=O)c1ccccc1", "CCO", "F[C@H](Cl)Br"]
    base = PretrainingDataConfig(corpus=corpus_file, val_fraction=0.2, augment=False, physchem=False)
    plain = prepare_pretraining_data(base, progress=False)
    assert vocabulary_coverage(plain.tokenizer, task_smiles).n_unk > 0
    # a family without mix_tasks keeps the fingerprint it had before the option existed
    assert plain.fingerprint == content_hash(base.model_dump(exclude={"mix_tasks"}), _corpus(plain))

    with_mix = PretrainingDataConfig.model_validate({**base.model_dump(), "mix_tasks": [str(task_csv)]})
    mixed = prepare_pretraining_data(with_mix, progress=False)
    assert vocabulary_coverage(mixed.tokenizer, task_smiles).n_unk == 0
    assert mixed.val.smiles == plain.val.smiles  # held-out metrics stay comparable
    assert mixed.report.n_mixed == 3 and mixed.report.n_train == plain.report.n_train + 3  # CCO was in the corpus
    assert "includes 3 task molecules" in mixed.report.lines()[1]
    assert mixed.fingerprint != plain.fingerprint
    assert PretrainingDataConfig.model_validate({"mix_tasks": ["ESOL"]}).mix_tasks[0].name == "ESOL"


def _corpus(data) -> list[str]:
    from molw2s.data.prepare import load_corpus_spec

    return load_corpus_spec(data.config.corpus).smiles


@pytest.mark.parametrize("physchem", [False, True])
def test_micro_batches_and_packing_give_the_whole_batch_gradient(corpus_file: str, tmp_path, physchem: bool) -> None:
    """Gradient accumulation and packed rows: the loss and every gradient of a step equal
    the padded whole batch's (dropout off, so only float rounding differs)."""
    from molw2s.pretraining.config import MemberConfig, TrainConfig
    from molw2s.pretraining.trainer import MemberTrainer

    data = prepare_pretraining_data(
        PretrainingDataConfig(corpus=corpus_file, val_fraction=0.2, physchem=physchem, descriptor_jobs=1),
        progress=False,
    )
    size = {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32, "dropout": 0.0}
    member = MemberConfig(name="m", model={**size, "attention_dropout": 0.0}, steps=3)

    def first_step(micro_batches: int, packing: int | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        train = TrainConfig(batch_size=12, micro_batches=micro_batches, packing=packing, num_threads=1, warmup_steps=0)
        where = tmp_path / f"{micro_batches}-{packing}"
        trainer = MemberTrainer(member, train, data, where, config_hash="x", progress=False)
        grads: dict[str, torch.Tensor] = {}

        def capture(*_) -> None:  # the gradients the optimizer is about to apply
            grads.update({n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None})

        trainer.optimizer.register_step_pre_hook(capture)
        loss = trainer.train_step(next(trainer.batches()))
        return loss, grads

    loss_1, grads_1 = first_step(1)
    assert len(grads_1) > 10
    for loss, grads in (first_step(3), first_step(1, packing=128), first_step(3, packing=128)):
        torch.testing.assert_close(loss, loss_1, rtol=1e-5, atol=1e-6)
        assert grads.keys() == grads_1.keys()
        for name, grad in grads_1.items():
            torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_a_training_step_never_searches_the_device(corpus_file: str, tmp_path, monkeypatch) -> None:
    """The labelled positions and every count come with the batch (found on the host by
    the batch builders): a step runs without torch.nonzero, the call that makes a GPU
    wait; and a packing narrower than a molecule is refused."""
    from molw2s.errors import ConfigError
    from molw2s.pretraining.config import MemberConfig, TrainConfig
    from molw2s.pretraining.trainer import MemberTrainer

    data = prepare_pretraining_data(
        PretrainingDataConfig(corpus=corpus_file, val_fraction=0.2, physchem=True, descriptor_jobs=1), progress=False
    )
    member = MemberConfig(
        name="m", model={"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32}, steps=3
    )
    for packing in (None, 128):
        train = TrainConfig(batch_size=8, micro_batches=2, packing=packing, num_threads=1, warmup_steps=0)
        trainer = MemberTrainer(member, train, data, tmp_path / str(packing), config_hash="x", progress=False)
        parts = next(trainer.batches())
        with monkeypatch.context() as patch:
            patch.setattr(torch, "nonzero", lambda *a, **k: pytest.fail("searched labels during the step"))
            assert torch.isfinite(trainer.train_step(parts))
        assert [p.starts is not None for p in parts] == [packing is not None] * 2
    with pytest.raises(ConfigError, match="train.packing=64 is shorter than data.max_length=128"):
        MemberTrainer(member, TrainConfig(packing=64), data, tmp_path / "narrow", config_hash="x", progress=False)


def test_a_compiled_member_trains_to_the_eager_weights(corpus_file: str, tmp_path, monkeypatch) -> None:
    """train.compile: the model goes through torch.compile (here with the aot_eager backend:
    TorchDynamo's capture and AOTAutograd of our forward with packed rows, without the
    minute of C++ code generation inductor needs on a CPU) and trains to the same weights."""
    from molw2s.pretraining.config import MemberConfig, TrainConfig
    from molw2s.pretraining.trainer import MemberTrainer

    data = prepare_pretraining_data(
        PretrainingDataConfig(corpus=corpus_file, val_fraction=0.2, physchem=True, descriptor_jobs=1), progress=False
    )
    size = {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32}
    member = MemberConfig(name="m", model={**size, "dropout": 0.0, "attention_dropout": 0.0}, steps=3)
    real_compile, compiled = torch.compile, []

    def compile_for_test(model, **kwargs):
        compiled.append(kwargs["mode"])
        return real_compile(model, backend="aot_eager")

    weights = {}
    for compile_ in (False, True):
        train = TrainConfig(batch_size=8, packing=128, compile=compile_, num_threads=1, warmup_steps=0)
        trainer = MemberTrainer(member, train, data, tmp_path / str(compile_), config_hash="x", progress=False)
        monkeypatch.setattr(torch, "compile", compile_for_test)
        trainer.train()
        weights[compile_] = trainer.model.state_dict()
    assert compiled == ["default"]
    for name, value in weights[False].items():
        torch.testing.assert_close(weights[True][name], value, rtol=1e-5, atol=1e-6, msg=name)
