"""The flag reference, generated: an mkdocs hook that fills docs/reference.md from the command line's parsers.

Nothing of it is typed by hand. The training settings' table reads their declarations (engine.config.SETTINGS: flag,
default, form label, live or restart, sweep range); each command's own flags come from its argparse parser
(tui.cli.build_parser, whose setting flags are built from the same declarations). tests/test_docs.py checks that every
flag of every command is in it.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.config import SETTINGS, TrainConfig
from engine.declaration import Setting
from engine.presets import PRESET_SETTINGS
from tui.cli import PROG, build_parser
from tui.cli.setting_flags import setting_help

PAGE = "reference.md"
MARKER = "<!-- generated: flag reference -->"
SETTING_DESTS = {declared.name for declared in SETTINGS}


def cell(text: str) -> str:
    """Text made safe for a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def option_text(action: argparse.Action) -> str:
    """`--cell {rnn,gru,lstm}`, `--lr LR`, `--force`; a positional's name."""
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    names = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{names}`"
    if action.choices is not None:
        return f"`{names} {'|'.join(str(choice) for choice in action.choices)}`"  # a code span keeps its | in a table
    return f"`{names} {action.metavar or action.dest.upper()}`"


def help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    expanded: str = parser._get_formatter()._expand_help(action)  # argparse's own %(default)s expansion
    return expanded


def settings_table() -> list[str]:
    """One row per training setting, in the form's order."""
    defaults = TrainConfig()
    english = PRESET_SETTINGS["d2l-en"]
    lines = [
        "| flag | meaning and default | d2l-en | in the app's form | sweep |",
        "|---|---|---|---|---|",
    ]
    for declared in SETTINGS:
        default = getattr(defaults, declared.name)
        preset = shown(english[declared.name]) if declared.name in english else ""
        lines.append(
            f"| {option_text(setting_action(declared))} | {cell(setting_help(declared, default))} | {cell(preset)} "
            f"| {cell(form_text(declared))} | {cell(sweep_text(declared))} |"
        )
    return lines


def setting_action(declared: Setting) -> argparse.Action:
    """The setting's flag as `rnn-tui train` declares it."""
    train = subcommands(build_parser())["train"]
    return next(action for action in train._actions if action.dest == declared.name)


def form_text(declared: Setting) -> str:
    applies = "live (next batch)" if declared.live else "on restart (F7)"
    resumed = "; a resumed run may change it" if declared.resumable and not declared.live else ""
    return f"`{declared.label}`, {applies}{resumed}"


def sweep_text(declared: Setting) -> str:
    if not declared.searchable:
        return ""
    if declared.search is None:
        return "searchable"
    sgd = f" (SGD: `{declared.search_sgd}`)" if declared.search_sgd else ""
    return f"`{declared.search}`{sgd}"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def subcommand_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each subcommand's one-line help, as `rnn-tui --help` lists it."""
    found: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update({choice.dest: choice.help or "" for choice in action._choices_actions})
    return found


def command_section(name: str, parser: argparse.ArgumentParser, level: int = 2, summary: str = "") -> list[str]:
    """A command's heading, what it does, and a table of its flags other than the training settings."""
    skipped = (argparse._SubParsersAction, argparse._HelpAction)
    actions = [action for action in parser._actions if not isinstance(action, skipped)]
    takes_settings = {action.dest for action in actions} >= SETTING_DESTS
    own = [action for action in actions if not (takes_settings and action.dest in SETTING_DESTS)]
    lines = ["#" * level + f" `{name}`", ""]
    if parser.description or summary:
        lines += [cell(parser.description or summary[:1].upper() + summary[1:] + "."), ""]
    if takes_settings:
        lines += ["It takes every [training setting](#training-settings) above.", ""]
    if own:
        lines += ["| flag | meaning |", "|---|---|"]
        lines += [f"| {option_text(action)} | {cell(help_text(parser, action))} |" for action in own]
        lines.append("")
    if parser.epilog and parser.formatter_class is argparse.RawDescriptionHelpFormatter:  # laid out by hand: kept
        lines += ["```text", parser.epilog.strip("\n"), "```", ""]
    helps = subcommand_help(parser)
    for sub_name, sub in subcommands(parser).items():
        lines += command_section(f"{name} {sub_name}", sub, level + 1, helps.get(sub_name, ""))
    return lines


def reference_markdown() -> str:
    """The generated part of the flag reference page."""
    parser = build_parser()
    lines = ["## Training settings", ""]
    lines += [
        "Every setting is declared once (`engine/config.py`); the app (`rnn-tui`), `rnn-tui train`, `rnn-tui sweep` "
        "and `rnn-tui serve` all take these flags. The defaults are the Chinese edition's §6.5 run (`--preset "
        "d2l-zh`); the d2l-en column is what `--preset d2l-en` sets instead (a flag given with it wins).",
        "",
    ]
    lines += settings_table()
    lines.append("")
    lines += command_section(PROG, parser)
    return "\n".join(lines).rstrip() + "\n"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """mkdocs hook: the reference page's marker replaced by the generated reference."""
    if page.file.src_uri == PAGE:
        return markdown.replace(MARKER, reference_markdown())
    return markdown
