"""LabResult, what each lab command returns, in a module of its own: the registry (tui.cli.lab) imports every
command's module, so a command's module names the result's type from here, not from the registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class LabResult(Protocol):
    def to_json(self) -> dict[str, Any]: ...

    def lines(self) -> list[str]: ...


# The texts a lab figure may read: the run's training text, the held-out text that follows it, the test text kept
# for the verdict, or a text typed on the command line (--text).
SOURCES = ("training", "held-out", "test", "given")


@dataclass(frozen=True)
class Sourced:
    """A view's result with the text it read named: "source" in its JSON, and a last line saying what was read."""

    result: LabResult
    source: str  # one of SOURCES
    read: str  # one line for a person: "read: the held-out text's first 101 characters"

    def to_json(self) -> dict[str, Any]:
        return {**self.result.to_json(), "source": self.source}

    def lines(self) -> list[str]:
        return [*self.result.lines(), self.read]
