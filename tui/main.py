"""The `rnn-tui` entry point: parse the flags (no torch, no Textual yet), then open the app or run headless."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from engine.cli import parse, run_command


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.command is None or (args.command == "train" and not args.headless):
        from tui.app import run_app

        return run_app(args)
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
