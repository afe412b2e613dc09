"""Any Hugging Face encoder as a model kind: ``hf:DIR_OR_NAME[?option=value&...]``.

``AutoModel`` + ``AutoTokenizer`` of a local directory or of a model in the Hugging Face
cache (never downloaded at run time: ``local_files_only=True`` always); for an
encoder-decoder model (T5, BART) the encoder half (``get_encoder()``). Embeddings are the
pooled hidden states of :class:`~molw2s.encoders.transformer.TransformerEncoder`, as for
``bert:`` checkpoints: ``cls`` is the first token's vector (a T5 has no [CLS]: its first
SMILES token), ``mean`` the mean over the non-padding tokens (special tokens included).

Options (``&``-separated, in any order):

=========================================  ==================================================
``smiles=canonical`` (default)             RDKit canonical SMILES, as molw2s tasks are
``smiles=kekule``                          Kekulé SMILES (explicit double bonds)
``smiles=selfies``                         SELFIES (``pip install 'molw2s[selfies]'``)
``smiles=as_is``                           the SMILES exactly as given
``trust_remote_code=true``                 run the Python code shipped with the model (its
                                           own architecture or tokenizer, e.g. MoLFormer):
                                           only for models whose code you trust
=========================================  ==================================================
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molw2s.encoders.spec import HF_KIND, EncoderOptions, ModelRef
from molw2s.encoders.tokenizer import EncodedBatch
from molw2s.encoders.transformer import TransformerEncoder, TransformerFiles, transformer_encoder
from molw2s.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

PREFIX = f"{HF_KIND}:"
SPELLINGS = ("canonical", "kekule", "selfies", "as_is")
DEFAULT_SPELLING = "canonical"
#: the files whose digests key an ``hf:`` model's embeddings: weights, configs, tokenizer
#: files (vocabularies, merges, sentencepiece models) and custom code
HASHED_FILES = ("*.safetensors", "*.bin", "*.json", "*.txt", "*.model", "*.py")
#: the sequence length assumed when neither the tokenizer nor the config states one
FALLBACK_MAX_LENGTH = 512


@dataclass
class HFFiles(TransformerFiles):
    """A Hugging Face model directory (local, or a snapshot in the HF cache) read with
    ``AutoModel`` / ``AutoTokenizer``, and how its SMILES are spelled."""

    path: Path
    name: str
    spelling: str = DEFAULT_SPELLING
    trust_remote_code: bool = False

    @property
    def spec(self) -> str:
        """``hf:<name>``, plus the options that are not the default."""
        options = [f"smiles={self.spelling}"] if self.spelling != DEFAULT_SPELLING else []
        options += ["trust_remote_code=true"] if self.trust_remote_code else []
        return f"{PREFIX}{self.name}" + (f"?{'&'.join(options)}" if options else "")

    def watched_files(self) -> list[Path]:
        """Every file of :data:`HASHED_FILES` in the directory (a cache snapshot's links resolve)."""
        return sorted({p for pattern in HASHED_FILES for p in self.path.glob(pattern) if p.is_file()})

    def identity(self, digests: dict[str, str]) -> dict[str, Any]:
        """The files' digests, the SMILES spelling and the custom-code opt-in."""
        return {"kind": HF_KIND, "files": digests, "smiles": self.spelling, "trust_remote_code": self.trust_remote_code}

    def load(self) -> tuple[PreTrainedModel, Any]:
        """``AutoModel`` (its encoder half for an encoder-decoder model) and ``AutoTokenizer``."""
        from transformers import AutoModel, AutoTokenizer

        from molw2s.encoders.model_files import quiet_transformers

        self._check_code()
        trust = self.trust_remote_code
        with quiet_transformers():
            model = AutoModel.from_pretrained(str(self.path), local_files_only=True, trust_remote_code=trust)
            tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True, trust_remote_code=trust)
        if model.config.is_encoder_decoder:
            model = model.get_encoder()
        if tokenizer.pad_token_id is None:
            raise ConfigError(f"{self.spec}: the tokenizer has no padding token, which batches need")
        return model.eval(), tokenizer

    def tokenize(self, tokenizer: Any, smiles: Sequence[str], *, max_length: int) -> EncodedBatch:
        """The tokenizer's ids of the spelled SMILES with its special tokens; a sequence
        longer than ``max_length`` is truncated by the tokenizer (special tokens kept)."""
        texts = spell(smiles, self.spelling)
        ids: list[list[int]] = tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
        truncated = [i for i, seq in enumerate(ids) if len(seq) > max_length]
        if truncated:
            short = tokenizer([texts[i] for i in truncated], truncation=True, max_length=max_length)["input_ids"]
            for i, seq in zip(truncated, short):
                ids[i] = seq
        unk = tokenizer.unk_token_id
        n_unk = 0 if unk is None else sum(seq.count(unk) for seq in ids)
        return EncodedBatch(ids=ids, n_unk=n_unk, truncated=truncated)

    def n_layers(self) -> int:
        """The config's layer count (an encoder-decoder's encoder layers)."""
        from transformers import AutoConfig

        self._check_code()
        config = AutoConfig.from_pretrained(
            str(self.path), local_files_only=True, trust_remote_code=self.trust_remote_code
        )
        return int(config.num_hidden_layers)

    def max_length(self, model: PreTrainedModel, tokenizer: Any) -> int:
        """The smaller of the tokenizer's ``model_max_length`` and the usable positions of
        the config (RoBERTa-style position ids start after the padding index); 512 when
        neither says."""
        limits = [int(tokenizer.model_max_length)] if tokenizer.model_max_length < 1_000_000 else []
        positions = getattr(model.config, "max_position_embeddings", None)
        if positions:
            offset = getattr(getattr(model, "embeddings", None), "padding_idx", None)
            limits.append(int(positions) - (0 if offset is None else int(offset) + 1))
        return min(limits, default=FALLBACK_MAX_LENGTH)

    def _check_code(self) -> None:
        """A ConfigError when the model needs its own code and the spec did not opt in."""
        from transformers import CONFIG_MAPPING

        config = json.loads((self.path / "config.json").read_text())
        if not self.trust_remote_code and "auto_map" in config and config.get("model_type") not in CONFIG_MAPPING:
            raise ConfigError(
                f"{self.spec}: model type {config.get('model_type')!r} needs the Python code shipped with the model "
                f"({', '.join(sorted(config['auto_map']))}); if you trust it, opt in with "
                f"hf:{self.name}?trust_remote_code=true (this executes that code)"
            )


def spell(smiles: Sequence[str], spelling: str) -> list[str]:
    """``smiles`` in ``spelling`` (:data:`SPELLINGS`); one RDKit cannot read stays as given."""
    if spelling == "as_is":
        return list(smiles)
    if spelling == "kekule":
        from molw2s.chem.kekule import kekule_smiles

        return [kekule_smiles(s) or s for s in smiles]
    from molw2s.chem.smiles import canonicalize

    canonical = [canonicalize(s) or s for s in smiles]
    if spelling == "canonical":
        return canonical
    import selfies

    return [selfies.encoder(s, strict=False) or s for s in canonical]


def resolve_model_dir(name: str) -> Path:
    """The directory of ``name``: a local directory, else the model's snapshot in the
    Hugging Face cache; a ConfigError saying how to download it when it is in neither."""
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ConfigError(f"hf:{name}: {local} has no config.json (not a Hugging Face model directory)")
        return local
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import HF_HUB_CACHE
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError):
        raise ConfigError(
            f"hf:{name}: no such local directory, and no model {name!r} in the Hugging Face cache ({HF_HUB_CACHE}; "
            "set HF_HOME or HF_HUB_CACHE to look elsewhere). molw2s never downloads at run time: download it "
            f"first, online, with `huggingface-cli download {name}` (or in Python: "
            f"huggingface_hub.snapshot_download({name!r})), or pass the model's directory"
        ) from None


class HFKind:
    """``hf:DIR_OR_NAME[?smiles=...&trust_remote_code=true]`` (prefix in any case): resolved
    to its directory when parsed, so a missing model fails before any work."""

    name = HF_KIND

    def parse(self, text: str) -> ModelRef | None:
        """The reference, with the canonical spec of :attr:`HFFiles.spec`."""
        if not text.lower().startswith(PREFIX):
            return None
        files = hf_files(text)
        return ModelRef(HF_KIND, files.spec, files.path)

    def files(self, ref: ModelRef) -> HFFiles:
        """The model's files as ``ref`` names them."""
        return hf_files(ref.spec)

    def encoder(self, ref: ModelRef, options: EncoderOptions) -> TransformerEncoder:
        """The pooled-hidden-state encoder of the model."""
        return transformer_encoder(self.files(ref), options)

    def describe(self) -> str:
        """The spec form of Hugging Face encoders."""
        return "hf:DIR_OR_NAME[?smiles=canonical|kekule|selfies|as_is&trust_remote_code=true]"


def hf_files(spec: str) -> HFFiles:
    """The files ``hf:NAME[?options]`` names; a ConfigError for a bad option or a missing model."""
    body = spec.strip()[len(PREFIX) :]
    name, _, query = body.partition("?")
    if not name:
        raise ConfigError(f"encoder {spec!r}: name a model directory or a Hugging Face model, e.g. hf:DIR")
    options = {"smiles": DEFAULT_SPELLING, "trust_remote_code": "false"}
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key not in options or not value:
            raise ConfigError(f"encoder {spec!r}: bad option {part!r}; allowed: {sorted(options)} as key=value")
        options[key] = value.lower()
    if options["smiles"] not in SPELLINGS:
        raise ConfigError(f"encoder {spec!r}: smiles must be one of {SPELLINGS}, got {options['smiles']!r}")
    if options["trust_remote_code"] not in ("true", "false"):
        raise ConfigError(f"encoder {spec!r}: trust_remote_code must be true or false")
    if options["smiles"] == "selfies" and importlib.util.find_spec("selfies") is None:
        raise ConfigError(f"encoder {spec!r}: smiles=selfies needs the selfies package: pip install 'molw2s[selfies]'")
    return HFFiles(resolve_model_dir(name), name, options["smiles"], options["trust_remote_code"] == "true")
