"""User-facing errors: each carries a one-line message fit to show as it is."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """What to tell the user of an unexpected exception: its message's first line, else its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class RnnTuiError(Exception):
    """An error caused by what the user asked for; its message is one line, no traceback."""


class ConfigError(RnnTuiError):
    """A setting has a value the engine cannot use."""


class CorpusError(RnnTuiError):
    """The corpus cannot be found, read or used."""


class PrefixError(RnnTuiError):
    """A generation prefix is empty or has characters outside the vocabulary."""


class CheckpointError(RnnTuiError):
    """A checkpoint is missing, damaged, or does not fit the current settings."""
