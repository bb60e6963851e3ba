"""The base of every lab pane (tui/screens/lab.py lists them): its own module, so that a pane's module imports it
without importing the lab screen, which imports the panes (no import cycle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.widget import Widget

if TYPE_CHECKING:
    from tui.app import RnnTuiApp


class LabPane(Widget):
    """One lab view. NAME: its id and its `rnn-tui lab NAME` twin; TITLE: the tab's label; HELP: for F1."""

    NAME: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    HELP: ClassVar[str] = ""

    @property
    def rnn_app(self) -> RnnTuiApp:
        return self.app  # type: ignore[return-value]

    def shown(self) -> None:
        """The pane's tab was chosen (also when the screen opens on it): recompute from the current weights."""
