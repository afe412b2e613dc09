"""``molw2s convert``: other projects' checkpoints as molw2s / Hugging Face model directories."""

from __future__ import annotations

from pathlib import Path

import typer

convert_app = typer.Typer(
    name="convert", help="Convert other projects' checkpoints into model directories.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the ``convert`` command group to ``app``."""
    app.add_typer(convert_app, name="convert")


@convert_app.command("molbert")
def molbert(
    checkpoint: Path = typer.Argument(
        ..., help="MolBERT Lightning checkpoint, e.g. molbert_100epochs/checkpoints/last.ckpt."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Model directory to write (default: ./<run folder>-molw2s)."),
    hparams: Path = typer.Option(
        None, "--hparams", help="MolBERT's hparams.yaml (default: two folders above the checkpoint)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty output directory."),
) -> None:
    """Turn published MolBERT weights into a model directory for bert:DIR (embed, run, finetune).

    The checkpoint is read without unpickling arbitrary objects; one that needs more is refused.
    """
    from molw2s.encoders.molbert_checkpoint import convert_molbert_checkpoint

    report = convert_molbert_checkpoint(checkpoint, out, hparams=hparams, force=force)
    arch = report.architecture
    typer.echo(f"converted {report.checkpoint} (sha256 {report.sha256[:12]}...) with {report.hparams_path}")
    typer.echo(
        f"  encoder: {arch.num_layers} layers, hidden {arch.hidden_size}, {arch.num_heads} heads, "
        f"intermediate {arch.intermediate_size}, {report.n_params:,} parameters"
    )
    typer.echo(
        f"  vocabulary: {arch.vocab_size} MolBERT tokens + [UNK]; Kekulé SMILES; "
        f"fixed sinusoidal positions: {arch.n_positions} (trained on <= {arch.max_seq_length} tokens)"
    )
    for name, count in sorted(report.dropped.items()):
        typer.echo(f"  dropped {name} ({count} tensors)")
    typer.echo(f"wrote {report.directory}  (use it as bert:{report.directory})")
