"""Sequence packing: the plan, the layout, and a packed forward pass that computes what the
padded one computes (hidden states, MLM logits, PhysChem outputs, losses and gradients)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from molw2s.encoders.model import MolBertForPretraining, make_molbert_config
from molw2s.encoders.model_size import ModelSizeConfig
from molw2s.encoders.packing import block_diagonal_mask, pack_layout, plan_packing
from molw2s.encoders.padding import pad_batch
from molw2s.encoders.physchem import PhysChemStats
from molw2s.encoders.tokenizer import IGNORE_INDEX
from molw2s.pretraining.loader import padded_batch

VOCAB, CLS_ID, PAD_ID = 30, 2, 0


def test_first_fit_decreasing_fills_rows_without_overlap() -> None:
    lengths = np.array([5, 9, 3, 7, 2, 8, 4])
    rows, offsets, n_rows = plan_packing(lengths, 10)
    assert n_rows == 4  # 38 tokens in rows of 10
    for row in range(n_rows):
        spans = sorted((offsets[i], offsets[i] + lengths[i]) for i in np.flatnonzero(rows == row))
        assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # contiguous
        assert spans[-1][1] <= 10
    assert plan_packing(lengths, 10)[0].tolist() == rows.tolist()  # a pure function of the lengths
    with pytest.raises(ValueError, match=r"lie in \[1, 8\]"):
        plan_packing(lengths, 8)


def _sequences(n: int, seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 20, (n,), generator=g).tolist()
    return [[CLS_ID, *torch.randint(5, VOCAB, (k - 1,), generator=g).tolist()] for k in lengths]


def test_layout_moves_every_token_and_restarts_positions() -> None:
    seqs = _sequences(9)
    ids, attention = pad_batch(seqs, PAD_ID)
    layout = pack_layout(attention, 32, rows_multiple_of=4)
    packed = layout.pack(ids, PAD_ID)
    assert packed.shape == (layout.n_rows, 32) and layout.n_rows % 4 == 0
    assert int((layout.segments > 0).sum()) == sum(map(len, seqs)) == int((packed != PAD_ID).sum())
    flat, positions = packed.flatten(), layout.position_ids.flatten()
    for i, seq in enumerate(seqs):
        start = int(layout.starts[i])
        assert flat[start : start + len(seq)].tolist() == seq  # in order, contiguous
        assert positions[start : start + len(seq)].tolist() == list(range(len(seq)))
    assert (flat[layout.starts] == CLS_ID).all()
    mask = block_diagonal_mask(layout.segments)
    row, a, b = 0, 0, int(layout.position_ids[0].argmax()) + 1  # first sequence of row 0, then the next
    assert mask[row, 0, a, a] and (mask[row, 0, a, b] == (layout.segments[row, a] == layout.segments[row, b]))


def _model(physchem: bool, attn: str = "sdpa") -> MolBertForPretraining:
    torch.manual_seed(0)
    size = ModelSizeConfig(
        num_layers=2, hidden_size=32, num_heads=4, intermediate_size=64, dropout=0.0, attention_dropout=0.0
    )
    stats = PhysChemStats(names=["a", "b", "c"], mean=[0.0] * 3, std=[1.0] * 3, clip=5.0) if physchem else None
    config = make_molbert_config(
        size, vocab_size=VOCAB, max_length=64, pad_token_id=PAD_ID, physchem=stats, attn_implementation=attn
    )
    return MolBertForPretraining(config)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_forward_equals_the_padded_one(attn: str) -> None:
    model = _model(physchem=True, attn=attn).eval()
    seqs = _sequences(11)
    ids, attention = pad_batch(seqs, PAD_ID)
    labels = torch.where(
        (torch.rand(ids.shape, generator=torch.Generator().manual_seed(3)) < 0.3) & (ids > 4), ids, IGNORE_INDEX
    )
    batch = padded_batch(ids, attention, labels, torch.randn(len(seqs), 3), 0, 0)
    packed = batch.packed(32, pad_id=PAD_ID, rows_multiple_of=2)
    assert packed.input_ids.numel() < ids.numel()  # fewer positions than padding to the longest
    with torch.no_grad():
        hidden_padded = model.bert(input_ids=ids, attention_mask=attention).last_hidden_state
        out_padded = model(**batch.model_inputs())
        out_packed = model(**packed.model_inputs())
        from molw2s.encoders.model import packed_attention_mask

        hidden_packed = model.bert(
            input_ids=packed.input_ids,
            attention_mask=packed_attention_mask(model.config, packed.attention_mask),
            position_ids=packed.position_ids,
        ).last_hidden_state
    layout = pack_layout(attention, 32, rows_multiple_of=2)
    torch.testing.assert_close(
        hidden_packed.flatten(0, 1)[layout.target], hidden_padded.flatten(0, 1)[layout.source], rtol=1e-5, atol=1e-5
    )
    assert out_packed.n_masked == out_padded.n_masked > 0
    torch.testing.assert_close(out_packed.mlm_loss, out_padded.mlm_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out_packed.physchem_pred, out_padded.physchem_pred, rtol=1e-5, atol=1e-6)
    assert int(out_packed.n_correct) == int(out_padded.n_correct)
    # the MLM logits of each masked token, wherever packing put it
    moved = dict(zip(layout.source.tolist(), layout.target.tolist()))
    row_of = {int(p): r for r, p in enumerate(packed.mlm_positions)}
    rows = [row_of[moved[int(p)]] for p in batch.mlm_positions]
    torch.testing.assert_close(out_packed.mlm_logits[rows], out_padded.mlm_logits, rtol=1e-5, atol=1e-5)


def test_packed_and_padded_gradients_agree() -> None:
    seqs = _sequences(10, seed=4)
    ids, attention = pad_batch(seqs, PAD_ID)
    labels = torch.where(ids > 4, ids, IGNORE_INDEX)
    batch = padded_batch(ids, attention, labels, torch.randn(len(seqs), 3), 0, 0)
    grads = []
    for layout in (batch, batch.packed(40, pad_id=PAD_ID)):
        model = _model(physchem=True)
        out = model(**layout.model_inputs())
        (out.mlm_loss + out.physchem_loss).backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 20
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-6, msg=name)
