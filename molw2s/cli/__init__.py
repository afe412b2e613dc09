"""The ``molw2s`` command. Each stage registers its subcommands from its own module.

Subcommand modules import heavy libraries (RDKit, torch) inside their functions, so
``molw2s --help`` stays fast.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import shlex
import shutil
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from molw2s import __version__
from molw2s.errors import MolW2SError
from molw2s.processes import Terminated, raise_on_sigterm

#: modules under molw2s.cli that each expose ``register(app: typer.Typer)``
SUBCOMMAND_MODULES = (
    "run",
    "report",
    "data",
    "pretrain",
    "embed",
    "predict",
    "finetune",
    "simulate",
    "convert",
    "multicap",
)

app = typer.Typer(
    name="molw2s",
    help="Weak-to-strong generalization experiments on molecules.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)
#: set by ``molw2s --debug``: errors re-raise with their Python traceback
_OPTIONS = {"debug": False}


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"molw2s {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv for debug)."),
    debug: bool = typer.Option(False, "--debug", help="Show the Python traceback of an error."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Weak-to-strong generalization experiments on molecules."""
    _OPTIONS["debug"] = debug
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


for _name in SUBCOMMAND_MODULES:
    importlib.import_module(f"molw2s.cli.{_name}").register(app)


def main() -> None:
    """Console entry point: every failure is one line on stderr (no markup interpretation,
    no traceback unless ``--debug``); exit status 2 for bad input or settings, 1 otherwise.
    An interrupt (Ctrl-C, SIGINT) or SIGTERM stops the command and its worker processes
    and says how to resume (exit status 130 or 143)."""
    raise_on_sigterm()
    try:
        app()
    except SystemExit as exit_:
        interrupt = _interrupt_of(exit_)
        if interrupt is None:
            raise
        err_console.print(Text(interrupted_message(interrupt, sys.argv[1:])), highlight=False, soft_wrap=True)
        sys.exit(143 if isinstance(interrupt, Terminated) else 130)
    except Exception as exc:
        if _OPTIONS["debug"] or os.environ.get("MOLW2S_DEBUG"):
            raise
        err_console.print(
            Text("error: ", style="bold red") + Text(describe_error(exc)), highlight=False, soft_wrap=True
        )
        sys.exit(2 if isinstance(exc, MolW2SError) else 1)


def _interrupt_of(exit_: SystemExit) -> KeyboardInterrupt | None:
    """The interrupt behind ``exit_`` (typer turns ``KeyboardInterrupt`` into exit status 130)."""
    cause: BaseException | None = exit_
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def interrupted_message(interrupt: KeyboardInterrupt, args: list[str]) -> str:
    """One line: which command stopped, why, and how to resume it."""
    command = shlex.join(["molw2s", *args])
    why = "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted"
    return (
        f"{why}: `{command}` stopped, with its worker processes; rerun the same command to resume "
        "(finished members, checkpoints and cells are kept)"
    )


def describe_error(exc: BaseException) -> str:
    """One line a user can act on, for any exception."""
    if isinstance(exc, MolW2SError):
        return str(exc)
    if isinstance(exc, OSError):
        path = exc.filename if exc.filename is not None else "?"
        if exc.errno == errno.ENOSPC:
            where = "(file not known)"
            if exc.filename is not None:
                target = Path(os.path.abspath(str(path)))
                where = f"{target} ({_free_bytes(target)} free on the file system holding it)"
            return (
                f"disk full while writing {where}; free some space or choose another --run-dir, then rerun: "
                "finished work is kept and resumed"
            )
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"cannot write or read {path}: {exc.strerror}; check its permissions or choose another --run-dir"
        return f"{exc.strerror or exc}: {path}"
    if isinstance(exc, (OverflowError, FloatingPointError)):
        return f"numeric overflow ({exc}): a setting or an input value is too large"
    return f"{type(exc).__name__}: {exc} (rerun as `molw2s --debug ...` for the traceback)"


def _free_bytes(path: Path) -> str:
    """Free space on the file system holding ``path`` (or its nearest existing parent)."""
    for folder in (path, *path.parents):
        if folder.exists():
            free = shutil.disk_usage(folder).free
            return f"{free / 2**20:,.0f} MiB"
    return "unknown space"
