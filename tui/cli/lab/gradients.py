"""`rnn-tui lab gradients`: gradients through time (engine/lab/gradients.py) over the checkpoint's held-out text."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry (tui.cli.lab) imports this module: no import back at run time
    from engine.lab.subject import Subject
    from tui.cli.lab.result import LabResult

HELP = "gradients through time: ‖∂ loss / ∂ h k steps back‖ over held-out windows (vanishing, exploding)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--window", type=int, default=100, metavar="N", help="characters a window reads, so k = 0 … N-1 (default 100)"
    )


def run(args: argparse.Namespace, subject: Subject) -> LabResult:
    from engine.errors import ConfigError
    from engine.lab.gradients import gradients_through_time

    if args.window < 1:
        raise ConfigError(f"--window must be at least 1, got {args.window}")
    from tui.cli.lab.result import Sourced

    held_out = subject.corpus.held_out
    found = gradients_through_time(subject.model, subject.vocab, held_out, args.window)
    read = (
        f"read: the held-out text ({len(held_out):,} characters), {found.windows} consecutive windows of "
        f"{args.window}, each from a zero state"
    )
    return Sourced(found, "held-out", read)
