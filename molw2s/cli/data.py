"""``molw2s data``: info, fetch, import, validate. (Being written: issue 2.)"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to ``app``."""
    data_app = typer.Typer(help="Find, download, import and validate data sets.", no_args_is_help=True)
    app.add_typer(data_app, name="data")
