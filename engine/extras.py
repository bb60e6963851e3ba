"""Optional extras: what a plain learner does not need is installed with pip's extras (pyproject.toml), and a
command that needs a missing one says in one line which command adds it."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class Extra:
    name: str  # pip's: rnn-tui[NAME]
    module: str  # what it installs, imported to tell whether it is there
    what: str  # in words, for the message

    @property
    def install(self) -> str:
        """The command that adds it: from the package index, or in a clone of the repository."""
        return f"pip install 'rnn-tui[{self.name}]' (in a clone: pip install -e '.[{self.name}]')"

    def missing(self, needed_by: str) -> str | None:
        """The one line to show when it is not installed, naming the command that adds it; None when it is."""
        try:
            import_module(self.module)
        except ImportError:
            return f"{needed_by} needs {self.what}, an optional extra: {self.install}"
        return None


SERVE = Extra("serve", "textual_serve", "the classroom server (textual-serve)")
POSTGRES = Extra("postgres", "psycopg", "the PostgreSQL driver (psycopg 3)")
