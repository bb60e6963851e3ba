"""The main screen: the panels, laid out in two columns over the generate box, each a typed property.

It holds no run logic: tui.app.run_control fills the panels from the engine's events, and the app's keys act on the
run through it. Modal screens (tui.app.screens) open over this one.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.widgets._footer import FooterKey

from engine.config import TrainConfig
from tui.app.widgets.generate import GenerateBox
from tui.app.widgets.plot import PerplexityPlot
from tui.app.widgets.samples import SamplesLog
from tui.app.widgets.settings import SettingsForm
from tui.app.widgets.shapes import ShapesTable
from tui.app.widgets.status import StatusPanel

# Below this size the form's inputs and drop-downs get too narrow to read (under 80 columns a drop-down shows two
# letters; under 20 rows the samples vanish): the screen says so instead of drawing them squashed.
MIN_WIDTH, MIN_HEIGHT = 80, 20
# Narrower or shorter than these, the stylesheet's -narrow and -short layouts apply (80×24 is the smallest usual).
NARROW_BELOW, SHORT_BELOW = 90, 28


# Under NARROW_BELOW columns the footer leaves these actions out, so that every other key, ^o Load the last, fits
# in 80 columns (F1 lists them all).
WIDE_ONLY_ACTIONS = ("stop", "runs")


class AppFooter(Footer):
    """The footer, its keys tagged with their action: the stylesheet hides WIDE_ONLY_ACTIONS' keys when narrow."""

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.action in WIDE_ONLY_ACTIONS:
                widget.add_class("-wide-only")
            yield widget


class MainScreen(Screen[None]):
    class Ready(Message):
        """The panels are composed and mounted: the app may start filling them."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self._form_config = config  # the settings form's first values (the command line's)

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            with Vertical(id="left"):
                yield StatusPanel(id="status")
                with Vertical(id="shapes-panel"):
                    yield ShapesTable(id="shapes")
                yield SamplesLog(id="samples")
            with Vertical(id="right"):
                yield PerplexityPlot(id="plot")
                yield SettingsForm(self._form_config, id="settings")
        yield GenerateBox(id="generate")
        yield Static("", id="too-small")
        yield AppFooter(compact=True, show_command_palette=False)  # ctrl+p still opens it; F1 says so

    def on_mount(self) -> None:
        self.status.border_title = "Status"
        self.samples.border_title = "Samples"
        self.query_one("#shapes-panel").border_title = "Shapes"
        self.post_message(self.Ready())

    # ----- the panels -----

    @property
    def status(self) -> StatusPanel:
        return self.query_one("#status", StatusPanel)

    @property
    def plot(self) -> PerplexityPlot:
        return self.query_one("#plot", PerplexityPlot)

    @property
    def samples(self) -> SamplesLog:
        return self.query_one("#samples", SamplesLog)

    @property
    def shapes(self) -> ShapesTable:
        return self.query_one("#shapes", ShapesTable)

    @property
    def settings(self) -> SettingsForm:
        return self.query_one("#settings", SettingsForm)

    @property
    def generate_box(self) -> GenerateBox:
        return self.query_one("#generate", GenerateBox)

    @property
    def prefix(self) -> Input:
        return self.query_one("#prefix", Input)

    # ----- layout for the terminal's size -----

    def fit(self, size: Size) -> None:
        """Switch to the short, narrow or too-small layout for size (Textual CSS has no media queries).

        Called on the app's refresh timer: the App's own Resize handler does not reach subclasses on a later resize.
        """
        self.set_class(size.height < SHORT_BELOW, "-short")
        self.set_class(size.width < NARROW_BELOW, "-narrow")
        tiny = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
        self.set_class(tiny, "-tiny")
        if tiny:
            self.query_one("#too-small", Static).update(
                f"The terminal is {size.width}×{size.height}; rnn-tui needs at least "
                f"{MIN_WIDTH}×{MIN_HEIGHT}. Enlarge it: training goes on meanwhile (ctrl+q quits)."
            )
