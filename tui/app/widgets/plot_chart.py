"""The plotext charts: the one inside the perplexity panel (imported only once the app's first frame is on
screen) and what any chart shows when plotext cannot draw it."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import Plot, PlotextPlot


def cannot_draw() -> Text:
    return Text("(the plot cannot be drawn at this size)", style="dim")


class FigurePlot(PlotextPlot):
    """A plotext chart whose figure draw_figure() sets up afresh each time it is painted (plotext's build() changes a
    log-scale figure's data, so building one figure twice draws nonsense); a figure plotext cannot draw shows one dim
    line instead of taking the app down."""

    def draw_figure(self) -> None:
        raise NotImplementedError

    def render(self) -> RenderResult:
        try:
            self.draw_figure()
            return super().render()
        except Exception:  # plotext is fragile on odd sizes and data: never let it take the app down
            return cannot_draw()


class Chart(FigurePlot):
    """A FigurePlot drawn by a function of the panel that holds it: draw(plt, width, height)."""

    def __init__(self, on_resize: Callable[[], None], draw: Callable[[Plot, int, int], None]) -> None:
        super().__init__()
        self._on_resize = on_resize
        self._draw = draw

    def draw_figure(self) -> None:
        self._draw(self.plt, self.size.width, self.size.height)

    def on_resize(self) -> None:
        self._on_resize()
