"""The ``molw2s`` command. Each stage registers its subcommands from its own module.

Subcommand modules import heavy libraries (RDKit, torch) inside their functions, so
``molw2s --help`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer
from rich.console import Console

from molw2s import __version__
from molw2s.errors import MolW2SError

#: modules under molw2s.cli that each expose ``register(app: typer.Typer)``
SUBCOMMAND_MODULES = ("run", "data", "pretrain", "embed", "predict", "simulate")

app = typer.Typer(
    name="molw2s",
    help="Weak-to-strong generalization experiments on molecules.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"molw2s {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv for debug)."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Weak-to-strong generalization experiments on molecules."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


for _name in SUBCOMMAND_MODULES:
    importlib.import_module(f"molw2s.cli.{_name}").register(app)


def main() -> None:
    """Console entry point: run the app, printing molw2s errors without a traceback."""
    try:
        app()
    except MolW2SError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, markup=True)
        sys.exit(2)
