"""LabPane, the base of each lab view's pane (tui/app/screens/lab.py lists them), in a module of its own so that a
view's module can import it without importing the registry that imports the view."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.widget import Widget

if TYPE_CHECKING:
    from tui.app.hosts import ScreenHost


class LabPane(Widget):
    """One lab view. NAME: its id and its `rnn-tui lab NAME` twin; TITLE: the tab's label; HELP: for F1."""

    NAME: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    HELP: ClassVar[str] = ""

    @property
    def rnn_app(self) -> ScreenHost:
        return self.app  # type: ignore[return-value]

    def shown(self) -> None:
        """The pane's tab was chosen (also when the screen opens on it): recompute from the current weights."""
