"""Atom-level SMILES tokenizer, Hugging Face compatible.

Tokens follow the regex of Schwaller et al. (2019): bracket atoms (``[nH]``, ``[C@@H]``,
``[N+]``), two-letter organic atoms (``Cl``, ``Br``), one-letter atoms, ring-bond digits
(``1``, ``%12``, ``%(123)``), bonds, branches and dots. A final catch-all alternative
makes *every* character part of some token, so ``"".join(tokenize_smiles(s)) == s`` for
any string; characters outside the SMILES alphabet end up as ``[UNK]`` at encoding time
(and are counted) instead of silently disappearing.

The tokenizer is a ``tokenizers`` WordLevel model with a regex ``Split`` pre-tokenizer,
wrapped as a ``PreTrainedTokenizerFast``: it round-trips through ``save_pretrained`` and
``AutoTokenizer.from_pretrained`` without custom code.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from molw2s.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
#: special tokens, in the order of their ids 0..4
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
#: label id of positions that carry no MLM target (the Hugging Face convention)
IGNORE_INDEX = -100

#: the SMILES alternatives, most specific first; ``FALLBACK`` catches anything else
SMILES_ALTERNATIVES = (
    r"\[[^\]]+\]",  # bracket atom
    r"Br",
    r"Cl",
    r"%\(\d+\)",  # ring bond >= 100 (OpenSMILES extension)
    r"%\d{2}",  # ring bond 10..99
    r"[BCNOPSFIbcnops]",  # organic subset, aliphatic and aromatic
    r"\d",  # ring bond 0..9
    r"[()\.=#\-+\\/:~@?>*$]",  # branches, dot, bonds, reaction/wildcard symbols
)
FALLBACK = r"[\s\S]"
SMILES_REGEX = "(" + "|".join(SMILES_ALTERNATIVES + (FALLBACK,)) + ")"
#: tokenizer_config.json key: the SMILES spelling the model was trained on. ``"kekule"``
#: (MolBERT's): :func:`encode_smiles` kekulizes each SMILES with RDKit before tokenizing.
SMILES_FORM_KEY = "smiles_form"
SMILES_FORMS = ("kekule",)
_TOKEN_RE = re.compile(SMILES_REGEX)
_KNOWN_RE = re.compile("(?:" + "|".join(SMILES_ALTERNATIVES) + r")\Z")


def tokenize_smiles(smiles: str) -> list[str]:
    """Split a SMILES string into atom-level tokens; joining them gives the input back."""
    return _TOKEN_RE.findall(smiles)


def is_smiles_token(token: str) -> bool:
    """True if ``token`` is matched by a SMILES alternative (not by the catch-all)."""
    return _KNOWN_RE.match(token) is not None


@dataclass(frozen=True)
class Vocabulary:
    """Token -> id map built from a corpus, with what was left out."""

    token_to_id: dict[str, int]
    counts: dict[str, int]
    dropped: dict[str, int]  # tokens below min_freq (they will encode as [UNK])

    def __len__(self) -> int:
        return len(self.token_to_id)


def build_vocab(smiles: Iterable[str], *, min_freq: int = 1) -> Vocabulary:
    """Count tokens over ``smiles``; keep those seen at least ``min_freq`` times.

    Ids: the five special tokens first, then kept tokens by decreasing count (ties by
    token), so the vocabulary is a deterministic function of the corpus.
    """
    return vocab_from_counts(count_tokens(smiles), min_freq=min_freq)


def count_tokens(smiles: Iterable[str]) -> Counter[str]:
    """Occurrences of each token over ``smiles``."""
    counts: Counter[str] = Counter()
    for s in smiles:
        counts.update(tokenize_smiles(s))
    return counts


def vocab_from_counts(counts: Counter[str], *, min_freq: int = 1) -> Vocabulary:
    """The vocabulary of :func:`build_vocab` from token counts already made."""
    if min_freq < 1:
        raise ConfigError(f"min_freq must be >= 1, got {min_freq}")
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = [t for t, c in ordered if c >= min_freq and t not in SPECIAL_TOKENS]
    token_to_id = {t: i for i, t in enumerate(SPECIAL_TOKENS + tuple(kept))}
    dropped = {t: c for t, c in ordered if c < min_freq}
    return Vocabulary(token_to_id=token_to_id, counts=dict(ordered), dropped=dropped)


def make_tokenizer(
    token_to_id: dict[str, int],
    *,
    max_length: int = 128,
    pattern: str = SMILES_REGEX,
    smiles_form: str | None = None,
) -> PreTrainedTokenizerFast:
    """A fast HF tokenizer: ``[CLS] tokens [SEP]``, WordLevel over the split by ``pattern``
    (one capturing group matching every character); ``smiles_form`` is saved with it
    (see :data:`SMILES_FORM_KEY`)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    missing = [t for t in SPECIAL_TOKENS if t not in token_to_id]
    if missing:
        raise ConfigError(f"vocabulary lacks the special tokens {missing}")
    if smiles_form is not None and smiles_form not in SMILES_FORMS:
        raise ConfigError(f"unknown smiles_form {smiles_form!r}; known: {SMILES_FORMS}")
    core = Tokenizer(models.WordLevel(vocab=dict(token_to_id), unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    core.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, token_to_id[CLS]), (SEP, token_to_id[SEP])],
    )
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core,
        unk_token=UNK,
        pad_token=PAD,
        cls_token=CLS,
        sep_token=SEP,
        mask_token=MASK,
        model_max_length=max_length,
        **({} if smiles_form is None else {SMILES_FORM_KEY: smiles_form}),
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, directory: str | Path) -> None:
    """``save_pretrained`` plus a ``tokenizer_class`` that transformers 4.x and 5.x both load."""
    directory = Path(directory)
    tokenizer.save_pretrained(str(directory))
    cfg_path = directory / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    # transformers 5 writes its backend name ("TokenizersBackend"), unknown to 4.x;
    # "PreTrainedTokenizerFast" names the same class in both.
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved by :func:`save_tokenizer` (``AutoTokenizer`` works too)."""
    from transformers import AutoTokenizer

    # the saved tokenizer_class is PreTrainedTokenizerFast, so AutoTokenizer builds one
    return cast("PreTrainedTokenizerFast", AutoTokenizer.from_pretrained(str(directory)))


@dataclass(frozen=True)
class EncodedBatch:
    """Token ids of a batch (``[CLS] ... [SEP]``, unpadded) and what went wrong on the way."""

    ids: list[list[int]]
    n_unk: int  # tokens mapped to [UNK]
    truncated: list[int]  # positions in the batch whose SMILES exceeded max_length


def smiles_form(tokenizer: PreTrainedTokenizerFast) -> str | None:
    """The SMILES spelling ``tokenizer`` expects (:data:`SMILES_FORM_KEY`; None: as given)."""
    form = tokenizer.init_kwargs.get(SMILES_FORM_KEY)
    if form is not None and form not in SMILES_FORMS:
        raise ConfigError(f"tokenizer config: unknown {SMILES_FORM_KEY} {form!r}; known: {SMILES_FORMS}")
    return cast("str | None", form)


def model_input_smiles(tokenizer: PreTrainedTokenizerFast, smiles: Sequence[str]) -> list[str]:
    """``smiles`` spelled as ``tokenizer``'s model reads them: kekulized for ``smiles_form:
    kekule`` (one RDKit cannot kekulize stays as given), unchanged otherwise."""
    texts = list(smiles)
    if smiles_form(tokenizer) == "kekule":
        from molw2s.chem.kekule import kekule_smiles

        texts = [kekule_smiles(s) or s for s in texts]
    return texts


def encode_smiles(tokenizer: PreTrainedTokenizerFast, smiles: Sequence[str], *, max_length: int) -> EncodedBatch:
    """Encode ``smiles`` with special tokens, truncating to ``max_length`` ids.

    A truncated sequence keeps its first ``max_length - 1`` ids and ends with ``[SEP]``.
    A tokenizer saved with ``smiles_form: kekule`` gets each SMILES kekulized first (one
    RDKit cannot kekulize is tokenized as given).
    """
    if max_length < 3:
        raise ConfigError(f"max_length must be >= 3 ([CLS], one token, [SEP]), got {max_length}")
    texts = model_input_smiles(tokenizer, smiles)
    encoded = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    unk, sep = tokenizer.unk_token_id, tokenizer.sep_token_id
    n_unk = sum(seq.count(unk) for seq in encoded)
    ids, truncated = [], []
    for i, seq in enumerate(encoded):
        if len(seq) > max_length:
            truncated.append(i)
            seq = seq[: max_length - 1] + [sep]
        ids.append(seq)
    return EncodedBatch(ids=ids, n_unk=n_unk, truncated=truncated)
