"""``molw2s embed``: representations of a task's molecules from a checkpoint or a fingerprint."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import typer

from molw2s.encoders.spec import DEFAULT_POOLING


def register(app: typer.Typer) -> None:
    """Add the ``embed`` command to ``app``."""
    app.command("embed")(embed)


def embed(
    encoder: str = typer.Option(
        ..., "--encoder", "-e", help="bert:PATH (or a model dir), hf:DIR_OR_NAME, ecfp4-2048, maccs, rdkit2d ..."
    ),
    task: str = typer.Option(..., "--task", "-t", help="ESOL, FreeSolv, Lipop, or a CSV path."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Directory holding the task files."),
    pooling: str = typer.Option(DEFAULT_POOLING, "--pooling", help="Transformer pooling: mean or cls."),
    layer: int = typer.Option(-1, "--layer", help="Transformer layer (0 = embeddings, -1 = last)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Molecules per forward pass."),
    precision: str = typer.Option(
        "float32", "--precision", help="Transformer forward pass: float32, or bfloat16 (bf16 autocast; faster)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Also write the array to this .npy file."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Read and write the embedding cache."),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show a progress bar (only on a terminal; MOLW2S_PROGRESS=1: anywhere)."
    ),
) -> None:
    """Embed every molecule of a task (float32 .npy, cached by content hash)."""
    from molw2s.data.tasks import load_task
    from molw2s.encoders.embed import compute_task_embedding, parse_encoder_spec
    from molw2s.encoders.spec import Pooling, Precision
    from molw2s.io import save_npy_atomic

    # EncoderOptions rejects a pooling or precision outside POOLINGS / PRECISIONS with a ConfigError
    spec = parse_encoder_spec(
        encoder,
        pooling=cast(Pooling, pooling),
        layer=layer,
        batch_size=batch_size,
        precision=cast(Precision, precision),
    )
    result = compute_task_embedding(spec, load_task(task, data_dir=data_dir), cache=cache, progress=progress)
    n, d = result.values.shape
    origin = "from cache" if result.from_cache else "computed"
    typer.echo(f"{result.info['encoder']} on {result.info['task']}: {n} molecules x {d} features ({origin})")
    for key, count in result.info.get("counts", {}).items():
        if count:
            typer.echo(f"  {key.replace('_', ' ')}: {count}")
    if result.path is not None:
        typer.echo(f"cache: {result.path}")
    if out is not None:
        save_npy_atomic(out, result.values)
        typer.echo(f"wrote {out}")
