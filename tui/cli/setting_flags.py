"""One setting's command-line flag, from its declaration (engine.config.SETTINGS): shared by the commands' parsers
(tui.cli) and the lab views that take training settings (tui.cli.lab.datasize), which the command line's
module imports: in a module of its own, so neither imports the other."""

from __future__ import annotations

from typing import Any

from engine.config import SettingValue, TrainConfig
from engine.declaration import Setting


def setting_help(declared: Setting, default: SettingValue) -> str:
    """A setting's --help text: its declared help and its default."""
    if declared.default_help == "":
        return declared.help
    if declared.default_help is None:
        shown = "default " + (f"{default:g}" if isinstance(default, float) else str(default))
    else:  # words, not the value: "default: greedy, as the book"
        shown = f"default: {declared.default_help}"
    return f"{declared.help} ({shown})" if declared.help else f"({shown})"


def add_setting_argument(group: Any, declared: Setting, help_text: str | None = None) -> None:
    """The flag of one TrainConfig setting: its type and choices from the declaration; no default (None: not given,
    so the preset's or TrainConfig's value applies)."""
    default = getattr(TrainConfig(), declared.name)
    help_text = help_text or setting_help(declared, default)
    group.add_argument(declared.option, dest=declared.name, help=help_text, **declared.kind_of.flag_keywords(declared))
