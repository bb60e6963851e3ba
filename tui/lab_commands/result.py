"""LabResult, what each lab command returns, in a module of its own: the registry (tui.lab_commands) imports every
command's module, so a command's module names the result's type from here, not from the registry."""

from __future__ import annotations

from typing import Any, Protocol


class LabResult(Protocol):
    def to_json(self) -> dict[str, Any]: ...

    def lines(self) -> list[str]: ...
