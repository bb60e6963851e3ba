"""User-facing errors: each carries a one-line message fit to show as it is."""

from __future__ import annotations

import re
from collections.abc import Callable

# A setting named in a message: «val_chars». The engine does not know what a front end calls it (the command line
# --val-chars, the app's form "held-out"): str() shows the name with dashes, worded() lets a front end choose.
SETTING_MARK = re.compile(r"«([a-z_]+)»")


def plain_name(name: str) -> str:
    return name.replace("_", "-")


def worded(text: str, name: Callable[[str], str] = plain_name) -> str:
    """text with each «setting» it names written as name(setting) says."""
    return SETTING_MARK.sub(lambda match: name(match.group(1)), text)


def first_line(exc: BaseException) -> str:
    """What to tell the user of an unexpected exception: its message's first line, else its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class RnnTuiError(Exception):
    """An error caused by what the user asked for; its message is one line, no traceback.

    A message may name settings as «name»: str() shows them plainly, worded() as a front end calls them.
    """

    def __init__(self, message: str = "", *rest: object) -> None:
        super().__init__(worded(message), *rest)
        self.template = message

    def worded(self, name: Callable[[str], str]) -> str:
        return worded(getattr(self, "template", str(self)), name)


class ConfigError(RnnTuiError):
    """A setting has a value the engine cannot use."""


class CorpusError(RnnTuiError):
    """The corpus cannot be found, read or used."""


class PrefixError(RnnTuiError):
    """A generation prefix is empty or has characters outside the vocabulary."""


class CheckpointError(RnnTuiError):
    """A checkpoint is missing, damaged, or does not fit the current settings."""
