"""The chart inside the perplexity panel: imported only once the app's first frame is on screen."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tui.widgets.plot import cannot_draw


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
