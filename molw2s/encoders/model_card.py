"""The model card (``README.md``) of a saved model directory, in Hugging Face's format:
YAML metadata, then what the model is, what it was trained on, its metrics, and how to
load it with nothing but ``transformers``.

The card holds no date or host name, so the same training writes the same card.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CARD_FILE = "README.md"
CARD_TAGS = ("chemistry", "smiles", "molbert", "molw2s")


def model_card(
    *,
    title: str,
    summary: str,
    training: Mapping[str, Any],
    metrics: Mapping[str, Any],
    architecture: Mapping[str, Any],
    example_smiles: tuple[str, str] = ("CCO", "c1ccccc1O"),
) -> str:
    """The Markdown text of a model card.

    ``training`` (corpus, steps, ...) and ``architecture`` (layers, hidden size, ...) become
    tables of facts; ``metrics`` a table of the final evaluation. Values are printed as
    given (floats with 4 significant digits). ``example_smiles`` appear in the loading
    example, spelled as the model reads them.
    """
    from molw2s import __version__

    tags = "\n".join(f"- {t}" for t in CARD_TAGS)
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: feature-extraction",
        f"tags:\n{tags}",
        "---",
        "",
        f"# {title}",
        "",
        summary,
        "",
        "## Training",
        "",
        *_table(training),
        f"| molw2s version | {__version__} |",
        "",
        "## Architecture",
        "",
        *_table(architecture),
        "",
        "## Metrics (held-out corpus molecules)",
        "",
        *(_table(metrics) if metrics else ["No evaluation was recorded."]),
        "",
        "## Loading",
        "",
        "With `transformers` alone (no molw2s needed):",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer",
        "",
        'tokenizer = AutoTokenizer.from_pretrained("PATH")',
        'model = AutoModel.from_pretrained("PATH")  # the bare BERT encoder; MLM/PhysChem heads are ignored',
        f'batch = tokenizer({json.dumps(list(example_smiles))}, padding=True, return_tensors="pt")',
        "hidden = model(**batch).last_hidden_state",
        "```",
        "",
        "With molw2s: `bert:PATH` as an encoder spec (`molw2s embed`, `molw2s run`, `molw2s finetune`).",
        "",
    ]
    return "\n".join(lines)


def write_model_card(directory: str | Path, card: str) -> Path:
    """Write ``card`` as ``directory/README.md``; returns the path."""
    path = Path(directory) / CARD_FILE
    path.write_text(card, encoding="utf-8")
    return path


def _table(facts: Mapping[str, Any]) -> list[str]:
    rows = ["| | |", "|---|---|"]
    rows += [f"| {key} | {_cell(value)} |" for key, value in facts.items()]
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list, tuple)):
        return "`" + json.dumps(value, sort_keys=True) + "`"
    return str(value).replace("|", "\\|")
