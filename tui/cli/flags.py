"""The flags every training front end shares (`rnn-tui`, `train`, `sweep`, `serve`): every setting's, from its
declaration, and the run's own; the settings given, read back (`config_overrides`) and given again as words
(`train_argv`); the files a run writes, checked before it trains."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from engine.config import SETTINGS, SETTINGS_BY_NAME, TrainConfig, preset_config, to_argv
from engine.errors import RnnTuiError
from engine.setting_kinds import GROUPS
from tui.cli.setting_flags import add_setting_argument


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage block) and exits with code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_train_arguments(parser: argparse.ArgumentParser, help_for: dict[str, str] | None = None) -> None:
    """Flags shared by `rnn-tui` (the app), `rnn-tui train`, `sweep` and `serve`: every TrainConfig setting (from its
    declaration, engine.config.SETTINGS) and the run's own flags. Defaults live in TrainConfig, not here."""
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    for declared in SETTINGS:
        add_setting_argument(groups[declared.group], declared, (help_for or {}).get(declared.name))
    groups["corpus"].add_argument(
        "--corpus-url", metavar="URL", help="where to download the book's corpus from when none is found"
    )
    groups["training"].add_argument(
        "--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)"
    )
    group = parser.add_argument_group("lessons")
    group.add_argument(
        "--lesson",
        metavar="NAME",
        help="a guided run of one of chapter 6's exercises: its settings (a flag given with it wins), its question, "
        "and an observation from your run at its end (rnn-tui lessons lists them)",
    )
    group.add_argument(
        "--observations",
        metavar="CSV",
        help="with --lesson: append the run's observation to this CSV (one row a run; a class's in one file)",
    )
    group = parser.add_argument_group("files")
    group.add_argument("--save", metavar="CKPT", help="save a checkpoint here when training ends or is stopped")
    group.add_argument(
        "--save-best",
        metavar="CKPT",
        help="save a checkpoint here at each epoch whose held-out perplexity is the best so far",
    )
    group.add_argument("--resume", metavar="CKPT", help="continue training from a checkpoint")
    group.add_argument("--metrics", metavar="FILE", help="append one JSON object per epoch to FILE")
    group.add_argument(
        "--force",
        action="store_true",
        help="let --save, --save-best or --metrics replace an existing file that is not rnn-tui's (never the corpus)",
    )


RUN_OPTIONS = {
    "corpus_url": "--corpus-url",
    "threads": "--threads",
    "save": "--save",
    "save_best": "--save-best",
    "resume": "--resume",
    "metrics": "--metrics",
    "force": "--force",
    "paused": "--paused",
    "lesson": "--lesson",
    "observations": "--observations",
}


def train_argv(args: argparse.Namespace) -> list[str]:
    """The train flags given in args as command-line words that parse back to them: the settings (to_argv) and the
    run's own flags. For a process started with the same run (a classroom's sessions)."""
    words = to_argv(config_overrides(args))
    for dest, option in RUN_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is True:
            words.append(option)
        elif value is not None and value is not False:
            words += [option, str(value)]
    return words


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig settings given on the command line (those left out keep their defaults)."""
    return {name: value for name, value in vars(args).items() if name in SETTINGS_BY_NAME and value is not None}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The settings given, over their preset's (see engine.config.preset_config)."""
    return preset_config(config_overrides(args))


def check_outputs(args: argparse.Namespace, corpus: str | None) -> None:
    """Every file the run will write is checked before it trains (before torch is loaded, when called from parse)."""
    from engine.outputs import check_distinct, check_output_target

    save_best = getattr(args, "save_best", None)
    check_distinct({"--save": args.save, "--save-best": save_best, "--metrics": args.metrics})
    # The paths as checked (~ expanded) are the ones written.
    if args.save is not None:
        args.save = str(check_output_target(args.save, "checkpoint", corpus=corpus, force=args.force, flag="--save"))
    if args.metrics is not None:
        args.metrics = str(
            check_output_target(args.metrics, "metrics", corpus=corpus, force=args.force, flag="--metrics")
        )
    if save_best is not None:
        args.save_best = str(
            check_output_target(save_best, "checkpoint", corpus=corpus, force=args.force, flag="--save-best")
        )


def corpus_or_none(path: str | None) -> str | None:
    """The corpus file a run would read, if it is found without downloading; its own errors come later."""
    from engine.data.corpus import find_corpus

    try:
        found = find_corpus(path)
    except RnnTuiError:
        return None
    return str(found) if found is not None else None
