"""MolBERT-style encoder: a Hugging Face BERT with a masked-LM head and a PhysChem head.

:class:`MolBertConfig` is a ``BertConfig`` (``model_type: bert``) plus the PhysChem head's
descriptor statistics (``physchem``, an extra key plain ``BertConfig`` keeps as an
attribute). So a saved directory is plain BERT to ``transformers``: in a process that never
imports molw2s, ``AutoConfig`` / ``AutoModel`` / ``AutoTokenizer.from_pretrained(dir)`` give
the config, the bare encoder and the tokenizer; ``MolBertForPretraining.from_pretrained``
restores the heads too. Older molw2s directories (``model_type: molbert``) still load
through the molw2s classes.
The PhysChem head (Fabian et al. 2020, MolBERT) regresses normalised RDKit
descriptors from the pooled [CLS] output. The MLM decoder is not tied to the input
embeddings (the vocabulary has ~100 tokens, so tying saves nothing, and untied weights
load the same way under transformers 4.x and 5.x).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import transformers
from torch import nn
from transformers import BertConfig, BertModel, PretrainedConfig
from transformers.activations import ACT2FN
from transformers.models.bert.modeling_bert import BertPreTrainedModel

from molw2s.encoders.model_size import ModelSizeConfig
from molw2s.encoders.packing import block_diagonal_mask
from molw2s.encoders.physchem import PhysChemStats
from molw2s.encoders.tokenizer import IGNORE_INDEX
from molw2s.errors import ConfigError

_TRANSFORMERS_5 = int(transformers.__version__.split(".")[0]) >= 5


class MolBertConfig(BertConfig):  # type: ignore[no-untyped-call]
    """A BERT config plus ``physchem``: the PhysChem head's descriptor names and
    normalisation (``PhysChemStats.to_dict()``), or None for a model without the head."""

    model_type = "bert"

    def __init__(self, physchem: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.physchem = physchem


def make_molbert_config(
    size: ModelSizeConfig,
    *,
    vocab_size: int,
    max_length: int,
    pad_token_id: int,
    physchem: PhysChemStats | None,
    attn_implementation: str = "sdpa",
) -> MolBertConfig:
    """The config of one family member (heads/hidden already validated by ``size``)."""
    config = MolBertConfig(
        vocab_size=vocab_size,
        hidden_size=size.hidden_size,
        num_hidden_layers=size.num_layers,
        num_attention_heads=size.num_heads,
        intermediate_size=size.intermediate_size,
        hidden_dropout_prob=size.dropout,
        attention_probs_dropout_prob=size.attention_dropout,
        max_position_embeddings=max_length,
        type_vocab_size=1,
        pad_token_id=pad_token_id,
        tie_word_embeddings=False,
        physchem=None if physchem is None else physchem.to_dict(),
    )
    config._attn_implementation = attn_implementation
    return config


class MLMHead(nn.Module):
    """Dense + activation + LayerNorm, then a linear decoder to the vocabulary."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT2FN[config.hidden_act]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.decoder(self.norm(self.act(self.dense(hidden))))
        return logits


class PhysChemHead(nn.Module):
    """MolBERT's descriptor regressor on the pooled [CLS] output."""

    def __init__(self, config: BertConfig, n_outputs: int) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.out = nn.Linear(config.hidden_size, n_outputs)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        pred: torch.Tensor = self.out(self.dropout(torch.relu(self.dense(pooled))))
        return pred


@dataclass
class MolBertOutput:
    """Losses (when targets are given) and predictions of :class:`MolBertForPretraining`."""

    mlm_loss: torch.Tensor | None = None
    physchem_loss: torch.Tensor | None = None
    mlm_logits: torch.Tensor | None = None  # (n_masked, vocab) at labelled positions only
    physchem_pred: torch.Tensor | None = None  # (batch, n_descriptors), normalised units
    n_masked: int = 0
    n_correct: torch.Tensor | None = None


class MolBertForPretraining(BertPreTrainedModel):  # type: ignore[no-untyped-call]
    """BERT encoder + MLM head + optional PhysChem head (``config.physchem``)."""

    config_class = MolBertConfig

    def __init__(self, config: MolBertConfig) -> None:
        super().__init__(config)
        stats = config.physchem
        # the pooler feeds only the PhysChem head; an unused one would break DDP
        self.bert = BertModel(config, add_pooling_layer=bool(stats))
        self.mlm = MLMHead(config)
        self.physchem = PhysChemHead(config, len(stats["names"])) if stats else None
        self.post_init()  # type: ignore[no-untyped-call]

    @property
    def physchem_stats(self) -> PhysChemStats | None:
        """The descriptor names and normalisation the PhysChem head was trained with."""
        stats = self.config.physchem
        return PhysChemStats.from_dict(stats) if stats else None

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        physchem_targets: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        starts: torch.Tensor | None = None,
        mlm_positions: torch.Tensor | None = None,
    ) -> MolBertOutput:
        """Losses and predictions of a padded batch, or of packed rows
        (:mod:`molw2s.encoders.packing`): then ``attention_mask`` holds the segment ids,
        ``position_ids`` restart at each sequence and ``starts`` indexes each sequence's
        ``[CLS]`` in the flattened rows (PhysChem outputs come in that order).

        MLM logits only where ``labels`` != -100 (cheaper than the whole sequence);
        ``mlm_positions``, those positions' flat indices, computed on the host, spares the
        device the synchronisation of finding them; the padding mask goes in 4-d
        (:func:`padding_attention_mask`), so nothing in the pass waits for the device.
        """
        packed = starts is not None
        mask = (packed_attention_mask if packed else padding_attention_mask)(self.config, attention_mask)
        out = self.bert(input_ids=input_ids, attention_mask=mask, position_ids=position_ids)
        hidden = out.last_hidden_state.flatten(0, 1)
        result = MolBertOutput()
        if labels is not None:
            if mlm_positions is None:
                mlm_positions = labelled_positions(labels)
            targets = labels.flatten().index_select(0, mlm_positions)
            logits = self.mlm(hidden.index_select(0, mlm_positions))
            result.mlm_logits = logits
            result.n_masked = int(targets.numel())
            result.n_correct = (logits.argmax(-1) == targets).sum()
            if targets.numel():
                result.mlm_loss = nn.functional.cross_entropy(logits.float(), targets)
            else:  # a batch of tiny molecules may draw no position at all
                result.mlm_loss = logits.sum() * 0.0
        if self.physchem is not None:
            pooled = out.pooler_output
            if starts is not None:  # the pooler reads each sequence's [CLS], wherever it was packed
                pooled = self.bert.pooler(hidden.index_select(0, starts)[:, None])  # type: ignore[misc]
            pred = self.physchem(pooled)
            result.physchem_pred = pred
            if physchem_targets is not None:
                result.physchem_loss = nn.functional.mse_loss(pred.float(), physchem_targets)
        return result


def labelled_positions(labels: torch.Tensor) -> torch.Tensor:
    """Flat indices of the positions that carry an MLM target (``labels`` != -100)."""
    return torch.nonzero(labels.flatten() != IGNORE_INDEX).squeeze(1)


#: model types whose encoders build their mask with transformers' ``create_bidirectional_mask``
#: and so take a 4-d mask unchanged (others, e.g. T5 or DeBERTa, get the 2-d mask)
FOUR_D_MASK_MODEL_TYPES = frozenset({"bert", "roberta", "electra"})


def padding_attention_mask(config: PretrainedConfig, attention_mask: torch.Tensor) -> torch.Tensor:
    """The 2-d padding mask (1 on real tokens) as the 4-d ``(batch, 1, 1, width)`` mask the
    attention reads: boolean for SDPA (and flash / flex kernels), additive for eager.

    Given a 2-d mask, transformers 5 tests in Python whether it holds any padding (to drop
    it and reach the flash kernel), which waits for the device on every forward pass; a 4-d
    mask passes through unchanged, and the outputs are the same (``tests/test_model.py``).
    Under transformers 4, and for model types outside :data:`FOUR_D_MASK_MODEL_TYPES`
    (whose own mask code may read a 4-d mask differently), the 2-d mask is returned as it is."""
    if not _TRANSFORMERS_5 or config.model_type not in FOUR_D_MASK_MODEL_TYPES:
        return attention_mask
    return _attention_form(config, attention_mask[:, None, None, :].bool())


def packed_attention_mask(config: BertConfig, segments: torch.Tensor) -> torch.Tensor:
    """The block-diagonal mask of packed rows in the form the model's attention reads: a
    boolean mask for SDPA (and flash / flex kernels), an additive one for eager attention.
    Needs transformers >= 5, which passes a 4-d mask through unchanged."""
    if not _TRANSFORMERS_5:
        raise ConfigError("packed batches (train.packing) need transformers >= 5: pip install -U transformers")
    return _attention_form(config, block_diagonal_mask(segments))


def _attention_form(config: PretrainedConfig, allowed: torch.Tensor) -> torch.Tensor:
    """A boolean 4-d mask (True: may attend) as the model's attention reads it: as it is for
    SDPA and the flash / flex kernels, additive (0 or the float32 minimum) for eager."""
    if config._attn_implementation != "eager":
        return allowed
    return torch.zeros(allowed.shape, device=allowed.device).masked_fill(~allowed, torch.finfo(torch.float32).min)


class MolBertModel(BertModel):  # type: ignore[no-untyped-call]
    """The bare encoder of a MolBERT directory (a ``BertModel`` reading ``MolBertConfig``; heads ignored)."""

    config_class = MolBertConfig
