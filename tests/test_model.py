"""MolBERT model, masking, descriptor normalisation and metrics against naive references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score
from transformers import AutoModel

from molw2s.encoders.model import MolBertForPretraining, make_molbert_config
from molw2s.encoders.model_size import ModelSizeConfig
from molw2s.encoders.physchem import PhysChemStats, fit_physchem_stats, normalize_physchem
from molw2s.encoders.tokenizer import IGNORE_INDEX
from molw2s.errors import ConfigError
from molw2s.pretraining.config import FamilyConfig, load_family_config
from molw2s.pretraining.masking import mask_tokens
from molw2s.pretraining.metrics import pooled_r2, unigram_baseline
from molw2s.training import lr_factor

SIZE = ModelSizeConfig(num_layers=2, hidden_size=16, num_heads=2, intermediate_size=32)
STATS = PhysChemStats(names=["a", "b", "c"], mean=[0.0, 1.0, 2.0], std=[1.0, 2.0, 3.0], clip=5.0)


def _model(physchem: PhysChemStats | None = STATS, vocab: int = 30) -> MolBertForPretraining:
    torch.manual_seed(0)
    config = make_molbert_config(SIZE, vocab_size=vocab, max_length=32, pad_token_id=0, physchem=physchem)
    return MolBertForPretraining(config).eval()


def test_losses_match_a_naive_full_sequence_computation() -> None:
    model = _model()
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 30, (4, 12), generator=gen)
    attention = torch.ones_like(ids)
    attention[1, 8:] = 0
    ids[1, 8:] = 0
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, 3] = ids[:, 3]
    labels[2, 5] = ids[2, 5]
    targets = torch.randn(4, 3, generator=gen)
    out = model(ids, attention, labels=labels, physchem_targets=targets)

    hidden = model.bert(input_ids=ids, attention_mask=attention).last_hidden_state
    logits = model.mlm(hidden)  # every position, then pick the labelled ones
    sel = labels != IGNORE_INDEX
    logp = torch.log_softmax(logits[sel], dim=-1)
    ref_mlm = -logp[torch.arange(int(sel.sum())), labels[sel]].mean()
    pooled = model.bert(input_ids=ids, attention_mask=attention).pooler_output
    ref_pc = ((model.physchem(pooled) - targets) ** 2).mean()

    assert out.n_masked == 5
    torch.testing.assert_close(out.mlm_loss, ref_mlm)
    torch.testing.assert_close(out.physchem_loss, ref_pc)
    assert int(out.n_correct) == int((logits[sel].argmax(-1) == labels[sel]).sum())


def test_padding_does_not_change_a_sequence_output() -> None:
    model = _model()
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    alone = model.bert(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    padded_ids = torch.cat([ids, torch.zeros((1, 6), dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones((1, 5)), torch.zeros((1, 6))], dim=1).long()
    padded = model.bert(input_ids=padded_ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(padded[:, :5], alone, atol=1e-5, rtol=1e-5)


def test_batch_without_masked_tokens_gives_zero_loss_with_gradient_path() -> None:
    model = _model(physchem=None)
    ids = torch.tensor([[2, 7, 3]])
    out = model(ids, torch.ones_like(ids), labels=torch.full_like(ids, IGNORE_INDEX))
    assert out.n_masked == 0 and float(out.mlm_loss.detach()) == 0.0 and out.physchem_pred is None
    out.mlm_loss.backward()  # the MLM head stays in the graph (DDP expects a gradient for it)
    grad = model.mlm.decoder.weight.grad
    assert grad is not None and not grad.any()


def test_save_and_from_pretrained_restore_weights_and_physchem_stats(tmp_path) -> None:
    model = _model()
    model.save_pretrained(str(tmp_path))
    loaded = MolBertForPretraining.from_pretrained(str(tmp_path)).eval()
    assert loaded.physchem_stats == STATS
    assert loaded.config._attn_implementation == "sdpa"
    ids = torch.tensor([[2, 7, 9, 3], [2, 8, 3, 0]])
    attention = (ids != 0).long()
    torch.testing.assert_close(loaded(ids, attention).physchem_pred, model(ids, attention).physchem_pred)
    encoder = AutoModel.from_pretrained(str(tmp_path)).eval()  # plain HF BertModel, heads ignored
    torch.testing.assert_close(
        encoder(input_ids=ids, attention_mask=attention).last_hidden_state,
        model.bert(input_ids=ids, attention_mask=attention).last_hidden_state,
    )


def test_heads_that_do_not_divide_hidden_are_rejected_before_training(tmp_path) -> None:
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        ModelSizeConfig(num_layers=1, hidden_size=32, num_heads=5, intermediate_size=64)
    with pytest.raises(ValueError, match="not divisible"):
        ModelSizeConfig(num_layers=1, hidden_size=8, num_heads=16, intermediate_size=64)
    path = tmp_path / "family.yaml"
    path.write_text(
        "name: f\nstrong: s\nmembers:\n  - name: s\n"
        "    model: {num_layers: 1, hidden_size: 30, num_heads: 4, intermediate_size: 8}\n    steps: 3\n"
    )
    with pytest.raises(ConfigError, match=r"members\.0\.model"):
        load_family_config(path)


def test_family_config_checks_names_snapshots_and_member_overrides() -> None:
    member = {"name": "s", "model": SIZE.model_dump(), "steps": 10}
    with pytest.raises(ValueError, match="strong"):
        FamilyConfig(name="f", strong="nope", members=[member])
    with pytest.raises(ValueError, match="unique"):
        FamilyConfig(name="f", strong="s", members=[member, member])
    with pytest.raises(ValueError, match="snapshots"):
        FamilyConfig(name="f", strong="s", members=[{**member, "snapshots": [10]}])
    with pytest.raises(ValueError, match="lr"):
        FamilyConfig(name="f", strong="s", members=[{**member, "train": {"lr": -1}}])
    fam = FamilyConfig(name="f", strong="s", members=[{**member, "train": {"lr": 0.01}}])
    assert fam.member_train(fam.members[0]).lr == 0.01 and fam.train.lr != 0.01


def test_masking_follows_80_10_10_and_never_touches_special_tokens() -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 50, (400, 100), generator=gen)
    ids[:, 0], ids[:, -1], ids[:, 90:99] = 2, 3, 0  # [CLS], [SEP], padding
    masked, labels = mask_tokens(ids, mask_token_id=4, n_special=5, vocab_size=50, generator=gen)
    chosen = labels != IGNORE_INDEX
    assert not chosen[ids < 5].any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])
    n = int(chosen.sum())
    assert abs(n / int((ids >= 5).sum()) - 0.15) < 0.01
    is_mask = masked[chosen] == 4
    kept = masked[chosen] == ids[chosen]
    assert abs(float(is_mask.float().mean()) - 0.8) < 0.02
    # kept: the 10% left alone plus random draws that hit the original token (1/45 of 10%)
    assert abs(float(kept.float().mean()) - (0.1 + 0.1 / 45)) < 0.015
    assert (masked[chosen] >= 4).all()
    first, _ = mask_tokens(ids, mask_token_id=4, n_special=5, vocab_size=50, generator=torch.Generator().manual_seed(7))
    again, _ = mask_tokens(ids, mask_token_id=4, n_special=5, vocab_size=50, generator=torch.Generator().manual_seed(7))
    assert torch.equal(again, first)


def test_physchem_normalisation_against_numpy() -> None:
    rng = np.random.default_rng(0)
    values = np.column_stack([rng.normal(3, 2, 200), np.full(200, 7.0), rng.normal(0, 1, 200)])
    values[0, 2] = 1e6  # an extreme value is clipped
    stats = fit_physchem_stats(values, ["x", "const", "y"], clip=4.0)
    assert stats.names == ["x", "y"]  # the constant descriptor is dropped
    np.testing.assert_allclose(stats.mean, values[:, [0, 2]].mean(axis=0))
    np.testing.assert_allclose(stats.std, values[:, [0, 2]].std(axis=0))
    z = normalize_physchem(values, ["x", "const", "y"], stats)
    expected = np.clip((values[:, [0, 2]] - values[:, [0, 2]].mean(axis=0)) / values[:, [0, 2]].std(axis=0), -4, 4)
    np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-6)
    assert z.dtype == np.float32 and z[0, 1] == 4.0
    assert PhysChemStats.from_dict(stats.to_dict()) == stats
    with pytest.raises(ValueError, match="finite"):
        fit_physchem_stats(np.array([[np.nan], [1.0]]), ["x"], clip=5)
    with pytest.raises(ValueError, match="missing"):
        normalize_physchem(values[:, :1], ["other"], stats)


def test_pooled_r2_equals_sklearn_variance_weighted() -> None:
    rng = np.random.default_rng(0)
    target = rng.normal(size=(50, 4)) * [1, 2, 3, 0.001]
    pred = target + rng.normal(size=(50, 4)) * 0.5
    assert pooled_r2(pred, target) == pytest.approx(r2_score(target, pred, multioutput="variance_weighted"))
    assert pooled_r2(target, target) == 1.0
    assert math.isnan(pooled_r2(target[:, :1] * 0, np.ones((50, 1))))


def test_unigram_baseline_predicts_the_most_frequent_training_token() -> None:
    counts = np.array([0, 0, 0, 0, 0, 6, 3, 1])
    labels = np.array([5, 5, 6, 7])
    base = unigram_baseline(counts, labels)
    assert base["accuracy"] == 0.5
    probs = (counts + 1) / (counts + 1).sum()
    assert base["loss"] == pytest.approx(-np.mean(np.log(probs[labels])))


@pytest.mark.parametrize("decay", ["linear", "cosine", "constant"])
def test_learning_rate_schedule(decay: str) -> None:
    f = [lr_factor(s, total=110, warmup=10, decay=decay, min_ratio=0.1) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)  # linear warmup
    assert f[10] == pytest.approx(1.0)
    if decay == "constant":
        assert f[-1] == 1.0
    else:
        assert f[60] == pytest.approx(0.55)  # halfway: linear and cosine agree
        assert lr_factor(110, total=110, warmup=10, decay=decay, min_ratio=0.1) == pytest.approx(0.1)
        assert all(a >= b for a, b in itertools.pairwise(f[10:]))


def test_molbert_config_round_trips_as_plain_bert(tmp_path) -> None:
    from transformers import AutoConfig, BertConfig, BertModel

    from molw2s.encoders.model import MolBertConfig
    from molw2s.encoders.model_files import load_pretrained, save_model
    from molw2s.encoders.tokenizer import build_vocab, make_tokenizer
    from molw2s.errors import MolW2SError

    model = _model()
    tokenizer = make_tokenizer(build_vocab(["CCO", "c1ccccc1N"]).token_to_id)
    save_model(model, tokenizer, tmp_path / "m")
    config = AutoConfig.from_pretrained(str(tmp_path / "m"))
    assert type(config) is BertConfig and config.model_type == "bert"  # transformers needs no molw2s class
    assert config.physchem == model.config.physchem and config.to_dict()["physchem"]["names"] == STATS.names
    assert MolBertConfig.from_pretrained(str(tmp_path / "m")).physchem == model.config.physchem
    assert isinstance(AutoModel.from_pretrained(str(tmp_path / "m")), BertModel)
    loaded, tok = load_pretrained(tmp_path / "m")
    assert not loaded.training and tok.get_vocab() == tokenizer.get_vocab()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)
    # strict: a directory whose weights miss the PhysChem head is refused, not half-loaded
    headless = _model(physchem=None)
    headless.config.physchem = model.config.physchem
    headless.save_pretrained(str(tmp_path / "bad"))
    with pytest.raises(MolW2SError, match="weights do not match"):
        load_pretrained(tmp_path / "bad")
