"""`rnn-tui lab NAME --checkpoint CKPT [--json]`: the command-line twin of each lab view (engine/lab).

One LabCommand a view, in its own module here, listed in LAB_COMMANDS. Each adds its own options, computes its
view from the checkpoint's Subject (engine.lab.subject) and returns a LabResult: to_json() for --json (one JSON
object on stdout, for scripts and tests), lines() for a person. Every result names the text it read, on screen
and in its JSON's "source" (SOURCES): a figure on the training text and one on the held-out text are never told
apart by their number alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui.cli.lab.result import LabResult

if TYPE_CHECKING:  # torch-backed: loaded only when a lab command runs
    from engine.lab.subject import Subject


@dataclass(frozen=True)
class LabCommand:
    name: str
    help: str  # one line, for `rnn-tui lab --help`
    add_arguments: Callable[[argparse.ArgumentParser], None]  # the view's own options (--checkpoint, --json given)
    run: Callable[[argparse.Namespace, Subject], LabResult]  # raises RnnTuiError for a bad option, in one line


def lab_commands() -> tuple[LabCommand, ...]:
    """Every lab view's command, in the order `rnn-tui lab --help` lists them."""
    from tui.cli.lab import copies, gates, gradients, horizon, ngram, saliency, timeline

    return tuple(
        LabCommand(view.__name__.rsplit(".", 1)[-1], view.HELP, view.add_arguments, view.run)
        for view in (gradients, saliency, gates, horizon, ngram, copies, timeline)
    )


def add_lab_parser(commands: Any, add_setting: Callable[..., None]) -> None:
    """The lab's views; add_setting adds one setting's flag (tui.cli.add_setting_argument: `lab datasize` takes the
    model's settings; passed in, so this package does not import the command line that imports it)."""
    lab = commands.add_parser(
        "lab",
        help="why training behaves: a lab view of a checkpoint (add --json for scripts)",
        description="Each view reads a checkpoint (and the text its run trained on) and prints what it shows in the "
        "app; --json prints one JSON object instead.",
    )
    views = lab.add_subparsers(dest="lab_view", metavar="VIEW", required=True)
    for command in lab_commands():
        view = views.add_parser(command.name, help=command.help, description=command.help)
        view.add_argument("--checkpoint", required=True, metavar="CKPT", help="the checkpoint to look into")
        view.add_argument("--corpus", metavar="PATH", help="the text to read (default: the one its run trained on)")
        view.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
        command.add_arguments(view)
    from tui.cli.lab import datasize  # trains its own runs: no checkpoint

    datasize.add_parser(views, add_setting)


def run_lab(args: argparse.Namespace) -> int:
    """Run the chosen view; an RnnTuiError propagates to the command line's one-line error (exit 2)."""
    from engine.lab.subject import load_subject

    if args.lab_view == "datasize":
        from tui.cli.lab import datasize

        return datasize.run(args)
    command = next(command for command in lab_commands() if command.name == args.lab_view)
    subject = load_subject(args.checkpoint, args.corpus)
    result = command.run(args, subject)
    if args.json:
        json.dump(result.to_json(), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for line in result.lines():
            print(line)
    return 0
