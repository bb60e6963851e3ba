"""How the command line speaks: its name, a bad input's one line and exit code 2 (`fail`), a line that survives a
terminal gone (`say`), the corpus download's progress bar."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, NoReturn

from engine.config import flag_name
from engine.errors import RnnTuiError

PROG = "rnn-tui"


def fail(message: str | RnnTuiError, code: int = 2) -> NoReturn:
    """One line on stderr and exit; an engine error's settings are named by their flags (--val-chars)."""
    text = message.worded(flag_name) if isinstance(message, RnnTuiError) else message
    print(f"{PROG}: error: {text}", file=sys.stderr)
    raise SystemExit(code)


def download_bar(done: int, total: int) -> None:
    """A one-line progress bar on stderr for the corpus download."""
    width = 30
    filled = width * done // total if total else 0
    size = f"{done / 1024:,.0f} / {total / 1024:,.0f} KiB" if total else f"{done / 1024:,.0f} KiB"
    end = "\n" if total and done >= total else ""
    print(
        f"\rdownloading the book's corpus [{'#' * filled}{'.' * (width - filled)}] {size}",
        end=end,
        file=sys.stderr,
        flush=True,
    )


def say(text: str, file: Any = None) -> None:
    """Print a line; a terminal gone (SIGHUP, a closed pipe) must not end the run or lose its weights."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=file or sys.stderr, flush=True)
