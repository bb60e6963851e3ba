"""The plotext charts: the one inside the perplexity panel (imported only once the app's first frame is on
screen) and what any chart shows when plotext cannot draw it."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import Plot, PlotextPlot


def cannot_draw() -> Text:
    return Text("(the plot cannot be drawn at this size)", style="dim")


class Chart(PlotextPlot):
    """A plotext chart whose figure is set up afresh by draw(plt, width, height) each time it is painted:
    plotext's build() changes a log-scale figure's data, so building one figure twice draws nonsense."""

    def __init__(self, on_resize: Callable[[], None], draw: Callable[[Plot, int, int], None]) -> None:
        super().__init__()
        self._on_resize = on_resize
        self._draw = draw

    def render(self) -> RenderResult:
        try:
            self._draw(self.plt, self.size.width, self.size.height)
            return super().render()
        except Exception:  # plotext is fragile on odd sizes and data: never let it take the app down
            return cannot_draw()

    def on_resize(self) -> None:
        self._on_resize()
