"""When progress bars are drawn: only for a person watching a terminal.

A tqdm bar redraws itself many times a second; written to a file (``molw2s run ... > log
2>&1``, a batch job, CI) every redraw becomes a line, and a quickstart log grows to
hundreds of kB. So every bar of molw2s is shown only when it was asked for (the default,
``--no-progress`` turns it off) *and* stderr, where tqdm writes, is a terminal.
``MOLW2S_PROGRESS=1`` shows the asked-for bars anywhere (e.g. in a Jupyter notebook,
whose stderr is no terminal); ``MOLW2S_PROGRESS=0`` hides them everywhere.
"""

from __future__ import annotations

import os
import sys

#: environment variable overriding the terminal test: ``1`` shows asked-for bars, ``0`` hides them
PROGRESS_ENV = "MOLW2S_PROGRESS"


def show_progress(requested: bool) -> bool:
    """Whether to draw a progress bar that the caller ``requested``: never when not
    requested; else as ``$MOLW2S_PROGRESS`` says (``1``/``0``), else when stderr is a TTY."""
    if not requested:
        return False
    env = os.environ.get(PROGRESS_ENV, "").strip()
    if env in ("0", "1"):
        return env == "1"
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty is not None and isatty())
