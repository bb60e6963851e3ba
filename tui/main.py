"""The `rnn-tui` entry point: parse the flags (no torch, no Textual yet), then open the app or run headless."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Sequence

from engine.extras import SERVE
from tui.cli import app_options, fail, parse, run_command

# The terminal's alternate screen: Textual draws there too, and leaves it on exit, so the splash never stays
# behind in the user's scrollback.
ENTER_ALTERNATE_SCREEN = "\x1b[?1049h\x1b[H\x1b[2J\x1b[?25l"
LEAVE_ALTERNATE_SCREEN = "\x1b[?25h\x1b[?1049l"


def show_splash() -> bool:
    """Paint a first frame at once: importing Textual and the app takes about half a second on a two-core
    machine, and a blank terminal for that long looks like a hang. Textual's first frame paints over it."""
    if not sys.stdout.isatty() or os.environ.get("TERM", "dumb") == "dumb":
        return False
    columns, rows = shutil.get_terminal_size()
    lines = ("rnn-tui", "starting: loading the interface…")
    top = max(0, rows // 2 - 1)
    frame = ENTER_ALTERNATE_SCREEN + "".join(
        f"\x1b[{top + i + 1};{max(1, (columns - len(line)) // 2 + 1)}H{line}" for i, line in enumerate(lines)
    )
    sys.stdout.write(frame)
    sys.stdout.flush()
    return True


def follow_the_terminal() -> None:
    """The app's size is its terminal's, resizes included. Textual reads it through shutil, which prefers $COLUMNS and
    $LINES: JupyterLab's terminal (terminado) exports them at its start and bash keeps them current, so an app started
    there kept its first size for good and drew past the edges of a smaller window."""
    if sys.stdout.isatty():
        os.environ.pop("COLUMNS", None)
        os.environ.pop("LINES", None)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.command == "serve":
        missing = SERVE.missing("rnn-tui serve")
        if missing:
            fail(missing)
        from tui.serve.run import run_server

        return run_server(args)
    if args.command is None or (args.command == "train" and not args.headless):
        follow_the_terminal()
        splashed = show_splash()
        try:
            from tui.app import run_app
        except BaseException as exc:
            if splashed:  # the app never started: give the terminal back as it was
                sys.stdout.write(LEAVE_ALTERNATE_SCREEN)
                sys.stdout.flush()
            if isinstance(exc, KeyboardInterrupt):  # ctrl+c while starting: leave quietly
                return 130
            raise
        return run_app(app_options(args))
    line_by_line()
    try:
        return run_command(args)
    except BrokenPipeError:  # `rnn-tui lessons | head -1`: the reader has gone, which is no error of the command
        quiet_stdout()
        return 0


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's own flush at exit finds no closed pipe to complain about."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())


def line_by_line() -> None:
    """A command's lines reach a pipe or a file in the order it wrote them: stdout, block-buffered there, is flushed
    at each line as stderr is (`rnn-tui generate … > out.txt 2>&1` would otherwise put every note before the text)."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)  # absent on a replaced stdout (pytest's capture)
    if reconfigure is not None:
        reconfigure(line_buffering=True)


if __name__ == "__main__":
    sys.exit(main())
