"""The lab (F11): why training behaves, one tab a view (engine/lab computes each; this only shows it).

Each view is a LabPane in its own module (tui/app/screens/lab_*.py), listed in lab_panes(). A pane computes from a copy
of the weights (tui.app.screens.model_source.current_model) in a thread worker, never from the training model, and
touches its widgets only from the app thread. Its HELP is the paragraph F1 shows under "The lab".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TabbedContent, TabPane

from tui.app.screens.lab_pane import LabPane  # in its own module: a view's module imports it, and lab_panes() the view

if TYPE_CHECKING:
    from tui.app.hosts import ScreenHost


def lab_panes() -> tuple[type[LabPane], ...]:
    """Every lab view, in tab order."""
    from tui.app.screens.lab_datasize import DatasizePane
    from tui.app.screens.lab_gradients import GradientsPane
    from tui.app.screens.lab_horizon import HorizonPane
    from tui.app.screens.lab_lessons import LessonsPane
    from tui.app.screens.lab_ngram import NgramPane
    from tui.app.screens.lab_timeline import TimelinePane

    return (GradientsPane, HorizonPane, NgramPane, DatasizePane, TimelinePane, LessonsPane)


class LabScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f11", "dismiss", "Close"),
        # A view may take ←/→ itself (the timeline scrubs with them): shift+←/→ picks a view from anywhere.
        Binding("shift+right", "next_view(1)", "Next view", show=False, priority=True),
        Binding("shift+left", "next_view(-1)", "Previous view", show=False, priority=True),
    ]
    DEFAULT_CSS = """
    LabScreen { align: center middle; }
    #lab-box { width: 98%; height: 96%; border: round $accent; background: $surface; }
    #lab-tabs { height: 1fr; }
    #lab-footer { color: $text-muted; height: 1; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="lab-box"):
            panes = lab_panes()
            if not panes:
                yield Static("No lab views yet.", id="lab-empty")
            else:
                with TabbedContent(id="lab-tabs"):
                    for pane in panes:
                        with TabPane(pane.TITLE, id=f"lab-{pane.NAME}"):
                            yield pane(id=f"lab-pane-{pane.NAME}")
            yield Static("Esc or F11 closes · shift+←/→ picks a view · F1 explains each", id="lab-footer")

    def on_mount(self) -> None:
        self.query_one("#lab-box").border_title = "Lab: why training behaves"
        self._show_active()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._show_active()

    def action_next_view(self, delta: int) -> None:
        for tabs in self.query(TabbedContent):
            views = [pane.id for pane in tabs.query(TabPane) if pane.id]
            if tabs.active in views:
                # Focus left in the view being hidden would take its tab back (TabbedContent follows focus).
                self.set_focus(None)
                tabs.active = views[(views.index(tabs.active) + delta) % len(views)]

    def _show_active(self) -> None:
        for tabs in self.query(TabbedContent):
            active = tabs.active
            if active:
                for pane in self.query(f"#{active} LabPane").results(LabPane):
                    pane.shown()


def open_lab(app: ScreenHost) -> None:
    """F11: the lab views of the current weights."""
    app.push_screen(LabScreen())
