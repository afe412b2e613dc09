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
    compare_strong: list[Path] = typer.Option(
        [],
        "--compare-strong",
        help="Other finished runs of the same tasks, splits and weak models with another strong model: "
        "print the regret of choosing the strong student by M, M_F / k_s and Err_sc. Repeatable.",
    ),
) -> None:
    """Print a finished run's headline table and provenance, from its results.json.

    The table holds Spearman correlations across weak models with their intervals, per
    task; without --markdown each task's plain-language reading follows it.
    """
    from molw2s.experiment.summary import headline_markdown, load_results

    if compare_strong:
        from molw2s.analysis.document import markdown_table
        from molw2s.experiment.strong_choice import compare_strong as strong_regret

        for task, table in strong_regret([run_dir, *compare_strong]).items():
            typer.echo(f"\n{task}: choosing the strong student for a fixed weak model\n")
            typer.echo(markdown_table(table.drop(columns="task")))
        return
    results = load_results(run_dir)
    typer.echo(headline_markdown(results))
    if not markdown:
        for task, res in results["tasks"].items():
            typer.echo(f"\n{task}: {res['interpretation']}")
