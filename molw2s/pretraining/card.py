"""The model card of a pretrained family member (final model or snapshot)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from molw2s.encoders.model_card import model_card
from molw2s.pretraining.config import MemberConfig, TrainConfig
from molw2s.pretraining.corpus import PretrainingData

#: held-out metrics shown on the card, in this order
CARD_METRICS = ("mlm_accuracy", "mlm_loss", "physchem_r2", "train_loss")


def member_card(
    member: MemberConfig,
    train: TrainConfig,
    data: PretrainingData,
    *,
    step: int,
    n_params: int,
    metrics: Mapping[str, Any],
    counters: Mapping[str, int],
) -> str:
    """Card of ``member`` saved at ``step``: corpus, optimisation, architecture and the last
    held-out evaluation."""
    report, corpus = data.report, data.config.corpus
    snapshot = "" if step == member.steps else f" (snapshot at step {step} of {member.steps})"
    training = {
        "corpus": corpus.name,
        "corpus molecules (train / held-out)": f"{report.n_train:,} / {report.n_val:,}",
        "corpus fingerprint": data.fingerprint,
        "steps": step,
        "batch size": train.batch_size,
        "learning rate": train.lr,
        "seed": train.seed,
        "tokens seen": counters.get("tokens", 0),
        "[UNK] tokens seen": counters.get("unk_tokens", 0),
        "objectives": "masked-token prediction" + (" + PhysChem descriptors" if data.physchem_stats else ""),
    }
    size = member.model
    architecture = {
        "layers": size.num_layers,
        "hidden size": size.hidden_size,
        "attention heads": size.num_heads,
        "intermediate size": size.intermediate_size,
        "max tokens": data.config.max_length,
        "vocabulary": len(data.tokenizer),
        "parameters": f"{n_params:,}",
    }
    shown = {k: metrics[k] for k in CARD_METRICS if k in metrics}
    summary = (
        f"A MolBERT-style SMILES encoder (BERT) pretrained with molw2s{snapshot}. "
        "Tokens are atom-level SMILES tokens; the tokenizer adds [CLS] ... [SEP]."
    )
    return model_card(
        title=f"molw2s encoder `{member.name}`",
        summary=summary,
        training=training,
        metrics=shown,
        architecture=architecture,
    )
