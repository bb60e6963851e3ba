"""The command line, a front end beside the app and the classroom server: one module a command, as the lab's views
are one module each (tui.cli.lab).

main (the parser and the dispatch), flags (what every training front end's parser shares), lines (how a command
speaks: one line and exit 2 for bad input), and a module a command: train (--headless), generate, shapes, sweep,
lab/, lessons, serve (its parser only; the server is tui.serve), app_options (the options the app opens with).
What the entry point (tui.main), the app and the server use is exported here.
"""

from tui.cli.app_options import AppOptions, app_options
from tui.cli.flags import config_from_args, config_overrides, train_argv
from tui.cli.headless_printer import BLANK_SAMPLES_NOTE
from tui.cli.lines import PROG, fail, say
from tui.cli.main import build_parser, parse, run_command
from tui.cli.sweep import sweep_arguments, sweep_spec

__all__ = [
    "BLANK_SAMPLES_NOTE",
    "PROG",
    "AppOptions",
    "app_options",
    "build_parser",
    "config_from_args",
    "config_overrides",
    "fail",
    "parse",
    "run_command",
    "say",
    "sweep_arguments",
    "sweep_spec",
    "train_argv",
]
