"""The published MolBERT weights (Fabian et al. 2020, BenevolentAI/MolBERT) as a molw2s model directory.

MolBERT ships a PyTorch Lightning checkpoint, ``<run>/checkpoints/last.ckpt``, and its
training options in ``<run>/hparams.yaml``: two folders above the checkpoint, where
MolBERT's own featurizer reads them. What the conversion reads:

- ``state_dict``: the encoder under ``model.bert.*``, a BERT whose position embeddings are
  computed, not learned (``model.bert.embeddings.position_embeddings.inv_freq`` holds
  ``1 / 10000^(2i/hidden)``; position ``p`` gets ``[sin(p * inv_freq), cos(p * inv_freq)]``,
  the two halves concatenated, added to the token and token-type embeddings before the
  embedding LayerNorm), then the pretraining heads under ``model.tasks.<i>.*`` (masked LM,
  PhysChem, is-same; a finetuned checkpoint's regression head), which are dropped.
- ``hparams.yaml``: ``tiny`` (MolBERT's debug size) or not (12 layers, hidden 768, 12
  heads, intermediate 3072), ``vocab_size`` (42), ``max_seq_length`` (128, the longest
  input in training) and ``max_position_embeddings`` (512). The head count is not in the
  weights: it follows from ``tiny`` unless the file names ``num_attention_heads``.
- the vocabulary is MolBERT's featurizer's, not the checkpoint's: :data:`MOLBERT_TOKENS`.
  The featurizer kekulizes a SMILES (RDKit, input atom order), then splits it into
  characters, keeping ``Br Cl Si Se se @@`` whole, between ``[CLS]`` and ``[SEP]``.

The converted encoder is a plain ``BertModel``: its learned position table holds those
sinusoids (at inference the same function; ``fixed_position_embeddings: true`` in the
config makes molw2s finetuning keep it frozen, as MolBERT's finetuning does), its
tokenizer reproduces MolBERT's ids and says ``smiles_form: kekule`` so molw2s kekulizes
SMILES first. MolBERT has no unknown token (its featurizer writes [PAD] there and masks
it out); the converted vocabulary adds ``[UNK]`` (id 42) with MolBERT's [MASK] embedding.

Safety: a checkpoint is a pickle. It is read with ``torch.load(weights_only=True)``, which
builds only tensors and plain containers; Lightning's ``AttributeDict`` (a dict of the
training options) is read as a dict and ``argparse.Namespace`` as itself. A file needing
anything else is refused: molw2s never unpickles outside files in full. The error says how
to re-save only the ``state_dict`` in an environment the user trusts.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molw2s.encoders.tokenizer import CLS, MASK, PAD, SEP, UNK, make_tokenizer
from molw2s.errors import MolW2SError
from molw2s.io import file_digest, write_verified_dir

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerFast

    from molw2s.encoders.model import MolBertConfig

#: MolBERT's featurizer vocabulary in id order: special symbols, allowed atoms, SMILES characters
MOLBERT_TOKENS: tuple[str, ...] = (
    (PAD, CLS, SEP, MASK)
    + ("F", "H", "I", "B", "C", "N", "O", "P", "S", "Br", "Cl", "Si", "Se", "se", "@@")
    + tuple("0123456789=@#%/\\()+-.[]")
)
#: the converted vocabulary: MolBERT's, then [UNK]
CONVERTED_TOKENS = MOLBERT_TOKENS + (UNK,)
#: MolBERT's split: its multi-character tokens whole, any other character alone
MOLBERT_SPLIT_REGEX = r"(Br|Cl|Si|Se|se|@@|[\s\S])"
#: the encoder's keys in the Lightning state dict, and those of the pretraining heads
ENCODER_PREFIX = "model.bert."
HEADS_PREFIX = "model.tasks."
INV_FREQ_KEY = "embeddings.position_embeddings.inv_freq"
#: (hidden, layers, heads, intermediate) of MolBERT's two sizes, by the ``tiny`` option
MOLBERT_SIZES = {True: (16, 2, 2, 32), False: (768, 12, 12, 3072)}
#: classes Lightning pickles that hold only plain values, read as a plain dict
PLAIN_DICT_CLASSES = (
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
)
FIXED_POSITIONS_KEY = "fixed_position_embeddings"


@dataclass(frozen=True)
class MolBertArchitecture:
    """What the weights and hparams.yaml say about the encoder."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    type_vocab_size: int
    max_seq_length: int
    n_positions: int  # rows of the converted position table

    def as_dict(self) -> dict[str, int]:
        """Field -> value, in declaration order."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class ConversionReport:
    """What :func:`convert_molbert_checkpoint` read, wrote and left out."""

    directory: Path
    checkpoint: Path
    sha256: str
    hparams_path: Path
    architecture: MolBertArchitecture
    n_params: int
    dropped: dict[str, int]  # module path (e.g. model.tasks.0.masked_lm_head) -> tensors dropped


def hparams_path_for(checkpoint: str | Path) -> Path:
    """Where MolBERT looks for the training options: ``<ckpt dir>/../hparams.yaml``."""
    return Path(checkpoint).parent.parent / "hparams.yaml"


def default_output_dir(checkpoint: str | Path) -> Path:
    """``./<run folder name>-molw2s`` in the working directory (the run folder holds hparams.yaml)."""
    run = Path(checkpoint).resolve().parent.parent
    return Path.cwd() / f"{run.name or 'molbert'}-molw2s"


def read_hparams(path: str | Path) -> dict[str, Any]:
    """hparams.yaml as a dict, read by a safe YAML loader that also accepts ``!!python/tuple``;
    any other Python-specific tag is refused."""
    import yaml

    class HparamsLoader(yaml.SafeLoader):
        """SafeLoader plus tuples (lists of plain values, nothing executable)."""

    def construct_tuple(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> tuple[Any, ...]:
        return tuple(loader.construct_sequence(node))

    HparamsLoader.add_constructor("tag:yaml.org,2002:python/tuple", construct_tuple)
    path = Path(path)
    if not path.is_file():
        raise MolW2SError(
            f"{path}: no such file; MolBERT keeps its training options in <run>/hparams.yaml for a checkpoint "
            "<run>/checkpoints/NAME.ckpt; pass --hparams FILE if yours lives elsewhere"
        )
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=HparamsLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise MolW2SError(f"{path}: not a plain YAML mapping of options ({exc})") from None
    if not isinstance(data, dict):
        raise MolW2SError(f"{path}: expected a mapping of training options, got {type(data).__name__}")
    return data


def load_lightning_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's top-level dict.

    Read with ``weights_only=True`` (tensors and plain containers; Lightning's AttributeDict
    as a dict, argparse.Namespace allowed). A file needing more is refused with a
    MolW2SError naming it, what it pickles, and how to re-save its ``state_dict`` alone.
    """
    import argparse

    import torch

    path = Path(path)
    if not path.is_file():
        raise MolW2SError(f"{path}: no such checkpoint file")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not (zipfile.is_zipfile(path) or head.startswith(b"\x80")):  # torch's zip format, or its legacy pickle
        raise MolW2SError(f"{path}: not a readable PyTorch checkpoint (neither torch's zip nor its pickle format)")
    if not hasattr(torch.serialization, "safe_globals"):
        raise MolW2SError(f"reading MolBERT checkpoints safely needs torch >= 2.5 (installed: {torch.__version__})")
    allowed: list[Any] = [argparse.Namespace, *((dict, name) for name in PLAIN_DICT_CLASSES)]
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise MolW2SError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
        raise MolW2SError(
            f"{path}: reading it needs full unpickling ({_weights_only_blocker(str(exc))}), which can run "
            "arbitrary code, and molw2s never unpickles outside files. If you trust the file, load it where "
            "you trust it and re-save its state_dict alone, as {'state_dict': ...} with torch.save, then "
            "convert that file (with --hparams)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise MolW2SError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    if not isinstance(obj, dict):
        raise MolW2SError(f"{path}: expected a Lightning checkpoint (a dict), got {type(obj).__name__}")
    return obj


def _weights_only_blocker(message: str) -> str:
    """What torch's weights-only reader refused, from its error message."""
    globals_ = sorted(set(re.findall(r"Unsupported global: GLOBAL (\S+)", message)))
    if globals_:
        return f"it pickles {', '.join(globals_)}"
    reason = message.partition("WeightsUnpickler error:")[2].partition("Check the documentation")[0].strip()
    return reason or "the weights-only reader refused it"


def split_state_dict(state: Mapping[str, Any], path: Path) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """The encoder's tensors (``model.bert.`` stripped) and, per module path, how many
    other tensors (the heads) are dropped."""
    import torch

    encoder: dict[str, torch.Tensor] = {}
    dropped: Counter[str] = Counter()
    for key, value in state.items():
        if key.startswith(ENCODER_PREFIX):
            if not isinstance(value, torch.Tensor):
                raise MolW2SError(f"{path}: state_dict[{key!r}] is a {type(value).__name__}, not a tensor")
            encoder[key[len(ENCODER_PREFIX) :]] = value
        else:
            dropped[".".join(key.split(".")[:4] if key.startswith(HEADS_PREFIX) else key.split(".")[:-1])] += 1
    if not encoder:
        sample = ", ".join(list(state)[:5]) or "none"
        raise MolW2SError(
            f"{path}: no MolBERT encoder weights (keys {ENCODER_PREFIX}*) in its state_dict; keys found: {sample}"
        )
    return encoder, dict(dropped)


def infer_architecture(
    encoder: Mapping[str, torch.Tensor], hparams: Mapping[str, Any], path: Path
) -> MolBertArchitecture:
    """Sizes from the weights' shapes; the head count and lengths from ``hparams``."""
    try:
        vocab, hidden = encoder["embeddings.word_embeddings.weight"].shape
        type_vocab = encoder["embeddings.token_type_embeddings.weight"].shape[0]
        intermediate = encoder["encoder.layer.0.intermediate.dense.weight"].shape[0]
    except KeyError as exc:
        raise MolW2SError(f"{path}: the encoder lacks {ENCODER_PREFIX}{exc.args[0]}") from None
    layers = len({int(m.group(1)) for k in encoder if (m := re.match(r"encoder\.layer\.(\d+)\.", k))})
    if vocab != len(MOLBERT_TOKENS) or hparams.get("vocab_size", vocab) != vocab:
        raise MolW2SError(
            f"{path}: the token embedding has {vocab} rows and hparams.yaml says vocab_size "
            f"{hparams.get('vocab_size')}, but MolBERT's SMILES vocabulary has {len(MOLBERT_TOKENS)} tokens; "
            "a checkpoint trained with another featurizer does not record its vocabulary"
        )
    tiny = bool(hparams.get("tiny", False))
    heads = hparams.get("num_attention_heads")
    if heads is None:
        want_hidden, want_layers, heads, want_intermediate = MOLBERT_SIZES[tiny]
        if (hidden, layers, intermediate) != (want_hidden, want_layers, want_intermediate):
            raise MolW2SError(
                f"{path}: the weights have hidden size {hidden}, {layers} layers and intermediate size "
                f"{intermediate}, not MolBERT's tiny={tiny} model ({want_hidden}, {want_layers}, "
                f"{want_intermediate}); the number of attention heads cannot be read from the weights: "
                "add num_attention_heads to hparams.yaml"
            )
    if not isinstance(heads, int) or heads < 1 or hidden % heads:
        raise MolW2SError(f"{path}: num_attention_heads {heads!r} does not divide the hidden size {hidden}")
    max_seq = int(hparams.get("max_seq_length", 128))
    return MolBertArchitecture(
        vocab_size=vocab,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=intermediate,
        type_vocab_size=type_vocab,
        max_seq_length=max_seq,
        n_positions=max(int(hparams.get("max_position_embeddings", 512)), max_seq),
    )


def sinusoid_table(n_positions: int, inv_freq: torch.Tensor) -> torch.Tensor:
    """(n_positions, 2 * len(inv_freq)) MolBERT position embeddings: ``[sin(p f), cos(p f)]``,
    computed in float32 as MolBERT does."""
    import torch

    angles = torch.outer(torch.arange(n_positions, dtype=torch.float32), inv_freq.float())
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def molbert_tokenizer(max_length: int) -> PreTrainedTokenizerFast:
    """A fast tokenizer giving MolBERT's ids for Kekulé SMILES (``[UNK]`` = 42 for other characters),
    saved with ``smiles_form: kekule``."""
    return make_tokenizer(
        {t: i for i, t in enumerate(CONVERTED_TOKENS)},
        max_length=max_length,
        pattern=MOLBERT_SPLIT_REGEX,
        smiles_form="kekule",
    )


def convert_molbert_checkpoint(
    checkpoint: str | Path,
    out: str | Path | None = None,
    *,
    hparams: str | Path | None = None,
    force: bool = False,
) -> ConversionReport:
    """Convert a MolBERT Lightning checkpoint into a model directory ``out`` (default
    :func:`default_output_dir`) that ``bert:DIR``, :func:`~molw2s.encoders.model_files.load_encoder`
    and ``transformers.AutoModel`` read. ``hparams`` defaults to :func:`hparams_path_for`.
    An existing non-empty ``out`` is replaced only with ``force``.
    """
    from molw2s.encoders.model import MolBertModel
    from molw2s.encoders.model_files import save_model

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise MolW2SError(f"{checkpoint}: no such checkpoint file")
    hparams_path = Path(hparams) if hparams is not None else hparams_path_for(checkpoint)
    target = Path(out) if out is not None else default_output_dir(checkpoint)
    _check_target(target, [checkpoint, hparams_path], force)
    options = read_hparams(hparams_path)
    loaded = load_lightning_checkpoint(checkpoint)
    state = loaded.get("state_dict")
    if not isinstance(state, Mapping):
        raise MolW2SError(f"{checkpoint}: no state_dict (keys: {', '.join(map(str, loaded)) or 'none'})")
    encoder, dropped = split_state_dict(state, checkpoint)
    arch = infer_architecture(encoder, options, checkpoint)
    model = MolBertModel(_bert_config(arch), add_pooling_layer=True)
    weights = _bert_weights(encoder, arch, checkpoint)
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:
        raise MolW2SError(f"{checkpoint}: encoder weights do not fit a BERT of {arch.as_dict()}: {exc}") from None
    if missing or unexpected:
        raise MolW2SError(
            f"{checkpoint}: encoder weights do not match a BERT: missing {sorted(missing)[:5]}, "
            f"unexpected {[ENCODER_PREFIX + k for k in sorted(unexpected)[:5]]}"
        )
    sha256 = file_digest(checkpoint, "sha256")
    card = _card(checkpoint, sha256, hparams_path, options, arch, loaded, dropped)
    tokenizer = molbert_tokenizer(arch.n_positions)
    meta = {"kind": "molbert-conversion", "source": str(checkpoint.resolve()), "source_sha256": sha256}
    write_verified_dir(target, lambda tmp: save_model(model, tokenizer, tmp, card=card), meta)
    return ConversionReport(
        directory=target,
        checkpoint=checkpoint,
        sha256=sha256,
        hparams_path=hparams_path,
        architecture=arch,
        n_params=sum(p.numel() for p in model.parameters()),
        dropped=dropped,
    )


def _bert_config(arch: MolBertArchitecture) -> MolBertConfig:
    """A BERT config of MolBERT's (transformers 3.5 defaults: GELU, dropout 0.1, LayerNorm eps 1e-12)
    with the [UNK] row and ``fixed_position_embeddings: true``."""
    from molw2s.encoders.model import MolBertConfig

    return MolBertConfig(
        vocab_size=len(CONVERTED_TOKENS),
        hidden_size=arch.hidden_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        intermediate_size=arch.intermediate_size,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=arch.n_positions,
        type_vocab_size=arch.type_vocab_size,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        tie_word_embeddings=False,
        physchem=None,
        **{FIXED_POSITIONS_KEY: True},
    )


def _bert_weights(encoder: dict[str, torch.Tensor], arch: MolBertArchitecture, path: Path) -> dict[str, torch.Tensor]:
    """The encoder's tensors as BERT's (float32): ``inv_freq`` replaced by the sinusoid
    table, the word embedding extended by [UNK] (a copy of [MASK]'s row)."""
    import torch

    weights = {k: v.float() for k, v in encoder.items()}
    inv_freq = weights.pop(INV_FREQ_KEY, None)
    if inv_freq is None or tuple(inv_freq.shape) != (arch.hidden_size // 2,) or arch.hidden_size % 2:
        found = None if inv_freq is None else tuple(inv_freq.shape)
        raise MolW2SError(
            f"{path}: expected {ENCODER_PREFIX}{INV_FREQ_KEY} with {arch.hidden_size // 2} inverse "
            f"frequencies (MolBERT's sinusoidal positions), found {found}"
        )
    weights["embeddings.position_embeddings.weight"] = sinusoid_table(arch.n_positions, inv_freq)
    words = weights["embeddings.word_embeddings.weight"]
    weights["embeddings.word_embeddings.weight"] = torch.cat([words, words[MOLBERT_TOKENS.index(MASK)][None]])
    return weights


def _check_target(target: Path, sources: list[Path], force: bool) -> None:
    """Refuse a non-empty ``target`` without ``force``, and always one holding the sources."""
    resolved = target.resolve()
    for src in sources:
        if resolved == src.resolve() or resolved in src.resolve().parents:
            raise MolW2SError(f"{target}: the output directory would replace {src}; choose another --out")
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not force:
        raise MolW2SError(f"{target}: exists and is not empty; pass --force to replace it, or choose another --out")


def _card(
    checkpoint: Path,
    sha256: str,
    hparams_path: Path,
    options: Mapping[str, Any],
    arch: MolBertArchitecture,
    loaded: Mapping[str, Any],
    dropped: Mapping[str, int],
) -> str:
    """The model card: the source, MolBERT's options, the architecture, what was changed."""
    from molw2s.encoders.model_card import model_card

    summary = (
        "The MolBERT encoder (Fabian et al. 2020, https://arxiv.org/abs/2011.13230; "
        "https://github.com/BenevolentAI/MolBERT) converted by `molw2s convert molbert`: a plain BERT "
        "whose position embeddings are MolBERT's fixed sinusoids "
        "(`[sin(p f), cos(p f)]`, `f = 1/10000^(2i/hidden)`; `fixed_position_embeddings: true`, "
        "frozen by molw2s finetuning), MolBERT's pretraining heads dropped. The tokenizer gives "
        "MolBERT's token ids for **Kekulé SMILES** (MolBERT's input: RDKit `Chem.Kekulize(mol, "
        "clearAromaticFlags=True)`, then `Chem.MolToSmiles(mol, kekuleSmiles=True, canonical=False)`); "
        "molw2s kekulizes for you (`smiles_form: kekule` in tokenizer_config.json), transformers alone does "
        "not. MolBERT's default features are the pooler output (`pooler_output` here); its `[UNK]`-free "
        "vocabulary gained `[UNK]` (id 42, MolBERT's [MASK] embedding)."
    )
    training = {
        "source checkpoint": str(checkpoint),
        "source sha256": sha256,
        "hparams.yaml": str(hparams_path),
        **{f"Lightning {k}": loaded[k] for k in ("epoch", "global_step") if k in loaded},
        **{
            f"MolBERT {k}": options[k]
            for k in ("tiny", "max_seq_length", "max_position_embeddings", "masked_lm", "is_same_smiles")
            + ("num_physchem_properties", "named_descriptor_set", "permute", "max_epochs", "learning_rate")
            if k in options
        },
        "dropped (tensors)": dict(dropped),
    }
    architecture = {
        "layers": arch.num_layers,
        "hidden size": arch.hidden_size,
        "attention heads": arch.num_heads,
        "intermediate size": arch.intermediate_size,
        "vocabulary": f"{arch.vocab_size} MolBERT tokens + [UNK]",
        "position embeddings": f"fixed sinusoids, {arch.n_positions} positions (trained on <= {arch.max_seq_length})",
        "token types": arch.type_vocab_size,
    }
    return model_card(
        title="MolBERT (converted)",
        summary=summary,
        training=training,
        metrics={},
        architecture=architecture,
        example_smiles=("CCO", "C1=CC=CC=C1O"),  # MolBERT reads Kekule SMILES
    )
