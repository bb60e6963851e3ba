"""The command line's parser, one module a command (tui.cli.*: each adds its own subparser), and the dispatch of a
parsed command to its runner. Parsing loads no torch: a bad flag is reported before anything heavy loads."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from engine.errors import ConfigError, RnnTuiError
from tui.cli.flags import ArgumentParser, add_train_arguments, check_outputs, config_from_args, corpus_or_none
from tui.cli.generate import add_generate_parser, run_generate
from tui.cli.lab import add_lab_parser, run_lab
from tui.cli.lessons import add_lessons_parser, apply_lesson, run_lessons
from tui.cli.lines import PROG, fail, say
from tui.cli.serve import add_serve_parser, check_serve_arguments
from tui.cli.setting_flags import add_setting_argument
from tui.cli.shapes import add_shapes_parser, run_shapes
from tui.cli.sweep import add_sweep_parser, run_sweep_command
from tui.cli.train import add_train_parser, run_headless


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rnn-tui")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Train a character-level RNN on Jay Chou lyrics and watch it learn (Dive into Deep Learning §6.5).",
        epilog="With no command, opens the app; it takes the flags of `rnn-tui train`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    add_train_arguments(parser)
    parser.add_argument("--paused", action="store_true", help="open the app with training paused")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_parser(commands)
    add_generate_parser(commands)
    add_sweep_parser(commands)
    add_lab_parser(commands, add_setting_argument)
    add_lessons_parser(commands)
    add_serve_parser(commands)
    add_shapes_parser(commands)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run a headless command; a user error becomes one line on stderr and exit code 2."""
    try:
        if args.command == "generate":
            return run_generate(args)
        if args.command == "shapes":
            return run_shapes(args)
        if args.command == "sweep":
            return run_sweep_command(args)
        if args.command == "lessons":
            return run_lessons()
        if args.command == "lab":
            return run_lab(args)
        return run_headless(args)
    except RnnTuiError as exc:
        fail(exc)
    except KeyboardInterrupt as exc:  # a second stop signal (engine.signals.Interrupted), or ctrl+c while loading
        say(f"{PROG}: interrupted")
        return getattr(exc, "exit_code", 130)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the settings, so a bad value is reported before anything heavy loads."""
    args = build_parser().parse_args(argv)
    apply_lesson(args)
    if args.command in (None, "train", "serve", "sweep"):
        try:
            config_from_args(args)
        except ConfigError as exc:
            fail(exc)
        from engine.limits import check_threads

        try:
            check_threads(args.threads)
            if args.command == "train" and args.headless:
                check_outputs(args, corpus_or_none(args.corpus))
        except RnnTuiError as exc:
            fail(exc)
    if args.command == "serve":
        check_serve_arguments(args)
    return args
