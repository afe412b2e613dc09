"""``molw2s report RUN_DIR``: the headline numbers of a finished run, from its results.json."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""
    app.command("report")(report)


def report(
    run_dir: Path = typer.Argument(..., help="A run directory of `molw2s run` (or its report/ folder)."),
    markdown: bool = typer.Option(False, "--markdown", help="Only the Markdown table (what the docs quote)."),
) -> None:
    """Print a finished run's headline table and provenance, from its results.json.

    The table holds Spearman correlations across weak models with their intervals, per
    task; without --markdown each task's plain-language reading follows it.
    """
    from molw2s.experiment.summary import headline_markdown, load_results

    results = load_results(run_dir)
    typer.echo(headline_markdown(results))
    if not markdown:
        for task, res in results["tasks"].items():
            typer.echo(f"\n{task}: {res['interpretation']}")
