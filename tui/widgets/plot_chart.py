"""The plotext charts: the one inside the perplexity panel (imported only once the app's first frame is on
screen) and what any chart shows when plotext cannot draw it."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot


def cannot_draw() -> Text:
    return Text("(the plot cannot be drawn at this size)", style="dim")


class Chart(PlotextPlot):
    def __init__(self, on_resize: Callable[[], None]) -> None:
        super().__init__()
        self._on_resize = on_resize

    def render(self) -> RenderResult:
        try:
            return super().render()
        except Exception:  # plotext is fragile on odd sizes and data: never let it take the app down
            return cannot_draw()

    def on_resize(self) -> None:
        self._on_resize()
