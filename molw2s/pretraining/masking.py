"""BERT masking: 15% of the real tokens; of those 80% [MASK], 10% random, 10% kept."""

from __future__ import annotations

import torch

from molw2s.encoders.tokenizer import IGNORE_INDEX


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    mask_token_id: int,
    n_special: int,
    vocab_size: int,
    generator: torch.Generator,
    mask_prob: float = 0.15,
    replace_prob: float = 0.8,
    random_prob: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(masked_ids, labels)``; ``labels`` is IGNORE_INDEX where nothing was chosen.

    Special tokens occupy ids ``0 .. n_special - 1``; they ([PAD], [CLS], [SEP], and [UNK],
    whose prediction would teach nothing) are never chosen, and random replacements are
    drawn from the ordinary tokens ``n_special .. vocab_size - 1``. Deterministic given
    ``generator``.
    """
    if not 0.0 <= replace_prob + random_prob <= 1.0:
        raise ValueError("replace_prob + random_prob must lie in [0, 1]")
    shape = input_ids.shape
    chosen = (torch.rand(shape, generator=generator) < mask_prob) & (input_ids >= n_special)
    action = torch.rand(shape, generator=generator)
    random_ids = torch.randint(n_special, vocab_size, shape, generator=generator)
    masked = input_ids.clone()
    to_mask = chosen & (action < replace_prob)
    to_random = chosen & (action >= replace_prob) & (action < replace_prob + random_prob)
    masked[to_mask] = mask_token_id
    masked[to_random] = random_ids[to_random]
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return masked, labels
