"""``molw2s data``: info, fetch, import, validate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from molw2s.data.validate import TaskCheck

DEFAULT_TASKS = ["ESOL", "FreeSolv", "Lipop"]

_DATA_DIR = typer.Option(
    None, "--data-dir", help="Directory holding data files (searched before the cache; $MOLW2S_DATA_DIR is the cache)."
)


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to ``app``."""
    data_app = typer.Typer(help="Find, download, import and validate data sets.", no_args_is_help=True)
    data_app.command("info")(info)
    data_app.command("fetch")(fetch)
    data_app.command("import")(import_)
    data_app.command("validate")(validate)
    app.add_typer(data_app, name="data")


def info(data_dir: Optional[Path] = _DATA_DIR) -> None:
    """List the known corpora and tasks, where each is looked for, and whether it is present."""
    from rich.console import Console
    from rich.table import Table

    from molw2s.data.locate import find_file, search_dirs
    from molw2s.data.registry import (
        CORPUS_SOURCES,
        CORPUS_SUBDIR,
        DEMO_TASKS,
        TASK_SOURCES,
        TASK_SUBDIR,
        nci5k_path,
    )
    from molw2s.io import DATA_DIR_ENV, cache_dir

    console = Console()
    console.print(f"cache directory: {cache_dir()}  (set {DATA_DIR_ENV} to move it)", markup=False)
    console.print(f"data directory:  {data_dir if data_dir else '(none; pass --data-dir)'}", markup=False)

    tasks = Table(title="tasks", show_lines=False)
    for col in ("name", "what", "found at", "otherwise"):
        tasks.add_column(col, overflow="fold")
    task_dirs = search_dirs(data_dir, TASK_SUBDIR)
    for src in TASK_SOURCES.values():
        found = find_file(src.filenames, task_dirs)
        tasks.add_row(
            src.name,
            f"{src.description}; {src.n_rows} rows",
            str(found) if found else f"[red]missing[/red] (looked for {', '.join(src.filenames)})",
            f"download {src.url}",
        )
    for name, (_descriptor, description) in DEMO_TASKS.items():
        tasks.add_row(name, description, str(nci5k_path()), "ships with RDKit")
    console.print(tasks)

    corpora = Table(title="corpora")
    for col in ("name", "what", "found at", "otherwise"):
        corpora.add_column(col, overflow="fold")
    corpora.add_row("nci5k", "4,999 NCI SMILES bundled with RDKit (quickstart)", str(nci5k_path()), "-")
    corpus_dirs = search_dirs(data_dir, CORPUS_SUBDIR)
    for corpus_src in CORPUS_SOURCES.values():
        found = find_file([corpus_src.filename], corpus_dirs)
        otherwise = (
            f"download {corpus_src.url} (md5 {corpus_src.md5})"
            if corpus_src.url
            else "local file only: molw2s data import DIR"
        )
        corpora.add_row(
            corpus_src.name,
            corpus_src.description,
            str(found) if found else f"[red]missing[/red] ({corpus_src.filename})",
            otherwise,
        )
    console.print(corpora)
    console.print(f"searched: {', '.join(str(d) for d in task_dirs + corpus_dirs)}", markup=False)


def fetch(
    task: list[str] = typer.Option([], "--task", "-t", help="Task to download (default: ESOL, FreeSolv, Lipop)."),
    corpus: list[str] = typer.Option([], "--corpus", "-c", help="Corpus to download, e.g. guacamol:train."),
    force: bool = typer.Option(False, "--force", help="Download again even if the cache has the file."),
) -> None:
    """Download tasks (MoleculeNet) and corpora (GuacaMol, md5-checked) into the cache."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from molw2s.data.fetch import fetch_corpus, fetch_task
    from molw2s.data.registry import CORPUS_ALIASES, CORPUS_SOURCES, TASK_SOURCES, resolve_name, task_aliases
    from molw2s.errors import MolW2SError

    jobs = [(resolve_name(t, list(TASK_SOURCES), task_aliases(), "downloadable task"), fetch_task) for t in task]
    jobs += [
        (resolve_name(c, list(CORPUS_SOURCES), CORPUS_ALIASES, "downloadable corpus"), fetch_corpus) for c in corpus
    ]
    if not jobs:
        jobs = [(name, fetch_task) for name in DEFAULT_TASKS]
    table = Table(title="fetch")
    for col in ("name", "status", "file"):
        table.add_column(col, overflow="fold")
    failed = 0
    for name, fetcher in jobs:
        try:
            path = fetcher(name, force=force)
            table.add_row(name, "[green]ok[/green]", str(path))
        except MolW2SError as exc:
            failed += 1
            table.add_row(name, "[red]failed[/red]", escape(str(exc)))
    Console().print(table)
    if failed:
        raise typer.Exit(code=1)


def import_(directory: Path = typer.Argument(..., help="Directory with data files to copy into the cache.")) -> None:
    """Copy recognised task, corpus and split files from DIR into the cache, verifying each."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from molw2s.data.importer import import_directory
    from molw2s.io import cache_dir

    results = import_directory(directory)
    table = Table(title=f"import into {cache_dir()}")
    for col in ("file", "kind", "status", "detail"):
        table.add_column(col, overflow="fold")
    colour = {"imported": "green", "up to date": "green", "rejected": "red", "ignored": "dim"}
    for r in results:
        table.add_row(escape(r.source.name), r.kind, f"[{colour[r.status]}]{r.status}[/]", escape(r.detail))
    Console().print(table)
    if any(r.status == "rejected" for r in results):
        raise typer.Exit(code=1)


def validate(
    task: list[str] = typer.Option([], "--task", "-t", help="Task name or CSV path (default: ESOL, FreeSolv, Lipop)."),
    corpus: list[str] = typer.Option([], "--corpus", "-c", help="Also check a corpus (name or path)."),
    data_dir: Optional[Path] = _DATA_DIR,
    smiles_col: Optional[str] = typer.Option(None, help="SMILES column (for CSV paths)."),
    label_col: Optional[str] = typer.Option(None, help="Label column (for CSV paths)."),
    download: bool = typer.Option(False, "--download/--no-download", help="Download missing task files."),
    strict: bool = typer.Option(False, "--strict", help="Exit with status 1 on any invalid SMILES or bad label."),
    examples: int = typer.Option(3, help="How many invalid entries to show per task."),
) -> None:
    """Per task: rows, valid / invalid SMILES (with examples), bad labels, duplicates, split files."""
    from rich.console import Console

    from molw2s.data.validate import check_task

    console = Console()
    checks = [
        check_task(name, data_dir=data_dir, smiles_col=smiles_col, label_col=label_col, download=download)
        for name in (task or DEFAULT_TASKS)
    ]
    _print_task_checks(console, checks, examples)
    corpus_status = [_print_corpus_check(console, name, data_dir, download, examples) for name in corpus]
    unreadable = any(c.error for c in checks) or "error" in corpus_status
    problems = not all(c.ok for c in checks) or "invalid" in corpus_status
    if unreadable or (strict and problems):
        raise typer.Exit(code=1)


def _duplicate_lines(check: TaskCheck, examples: int) -> list[str]:
    """Up to ``examples`` duplicate groups with conflicting labels (with their spread), then
    up to ``examples`` whose labels agree."""
    from molw2s.data.validate import label_spread

    conflicting = check.conflicting
    lines = []
    for i in conflicting[:examples]:
        labels = check.duplicate_labels[i]
        shown = ", ".join(f"{v:g}" for v in labels)
        lines.append(
            f"  duplicate rows: {check.duplicates[i].tolist()}: conflicting labels {shown} "
            f"(spread {label_spread(labels):g})"
        )
    agreeing = [i for i in range(len(check.duplicates)) if i not in conflicting]
    for i in agreeing[:examples]:
        lines.append(f"  duplicate rows: {check.duplicates[i].tolist()}: same label {check.duplicate_labels[i][0]:g}")
    return lines


def _print_task_checks(console: Console, checks: list[TaskCheck], examples: int) -> None:
    """The tasks table, per-task examples of problems, and the split-files table."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="tasks")
    for col in ("task", "rows", "expected", "valid SMILES", "invalid", "bad labels", "dup. groups", "kept"):
        table.add_column(col, justify="right" if col != "task" else "left")
    for c in checks:
        if c.error:
            table.add_row(c.name, *["-"] * 7)
            continue
        expected = "-" if c.expected_rows is None else str(c.expected_rows)
        if c.expected_rows is not None and c.expected_rows != c.n_rows:
            expected = f"[red]{expected}[/red]"
        groups = (
            f"{len(c.duplicates)} ([red]{len(c.conflicting)} conflicting[/red])" if c.conflicting else len(c.duplicates)
        )
        counts = (c.n_valid_smiles, _count(len(c.invalid)), _count(len(c.bad_labels)), groups, c.n_kept)
        table.add_row(c.name, str(c.n_rows), expected, *map(str, counts))
    console.print(table)
    splits = Table(title="split files")
    splits.add_column("task")
    splits.add_column("file", no_wrap=True)
    splits.add_column("train/valid/test")
    splits.add_column("rows dropped", justify="right")
    splits.add_column("status", overflow="fold")
    for c in checks:
        if c.error:
            console.print(f"[bold red]{escape(c.name)}:[/bold red] {escape(c.error)}", highlight=False)
            continue
        console.print(f"[bold]{escape(c.name)}[/bold]: {escape(str(c.source))}", highlight=False)
        for label, items in (("invalid SMILES", c.invalid), ("bad labels", c.bad_labels)):
            for item in items[:examples]:
                console.print(f"  {label}: {item}", highlight=False, markup=False)
        for line in _duplicate_lines(c, examples):
            console.print(line, highlight=False, markup=False)
        for s in c.splits:
            sizes = "/".join(map(str, s.sizes.values())) if s.sizes else "-"
            status = "[green]ok[/green]" if s.error is None else f"[red]{escape(s.error)}[/red]"
            splits.add_row(c.name, s.path.name, sizes, str(s.n_dropped), status)
    if splits.row_count:
        console.print(splits)


def _print_corpus_check(console: Console, name: str, data_dir: Path | None, download: bool, examples: int) -> str:
    """Print a corpus report; return 'ok', 'invalid' (some SMILES invalid) or 'error'."""
    from rich.markup import escape

    from molw2s.data.corpora import load_corpus
    from molw2s.errors import MolW2SError

    try:
        corpus = load_corpus(name, data_dir=data_dir, download=download, progress=True)
    except MolW2SError as exc:
        console.print(f"[bold red]corpus {escape(name)}:[/bold red] {escape(str(exc))}", highlight=False)
        return "error"
    console.print(corpus.report(max_examples=examples), highlight=False, markup=False)
    return "invalid" if corpus.n_skipped else "ok"


def _count(n: int) -> str:
    return f"[red]{n}[/red]" if n else "0"
