"""Perplexity per epoch, live, on a log scale; long runs are thinned to what the width can show.

The panel is drawn in the app's first frame; its chart (textual-plotext) is imported and added just after
it: importing plotext and drawing an empty chart would make the first frame later for nothing to see.
"""

from __future__ import annotations

import math
import time
from typing import Any

from textual.containers import Vertical

# Rebuilding a plotext chart is pure Python and costs the UI thread (and the GIL the trainer needs) more
# than anything else it draws; an epoch can take 0.2 s, so at most this often.
REDRAW_SECONDS = 1.0


def thin(points: list[tuple[int, float]], max_points: int) -> list[tuple[int, float]]:
    """At most max_points of points, evenly spread, always keeping the first and the latest."""
    if max_points < 2 or len(points) <= max_points:
        return list(points)
    step = (len(points) - 1) / (max_points - 1)
    picked = [points[round(i * step)] for i in range(max_points)]
    picked[-1] = points[-1]
    return picked


def epoch_ticks(first: int, last: int, count: int) -> list[int]:
    """About count whole-epoch ticks from first to last (epochs are integers: no 8.2 on the axis)."""
    step = max(1, round((last - first) / max(1, count - 1)))
    ticks = list(range(first, last + 1, step))
    if ticks[-1] != last:
        if last - ticks[-1] <= step / 2 and len(ticks) > 1:
            ticks[-1] = last  # no two ticks crammed together
        else:
            ticks.append(last)
    return ticks


def compact_number(value: float) -> str:
    """A short axis label: 7.3, 271, 4.3k, 13G (a diverging run's perplexity has eleven digits)."""
    if value < 10:
        return f"{value:.1f}"
    for limit, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            scaled = value / limit
            return f"{scaled:.1f}{suffix}" if scaled < 10 else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}"


def log_ticks(low: float, high: float, count: int) -> list[float]:
    """About count ticks from low to high, evenly spaced on a log scale."""
    if high <= low * 1.0001 or count < 2:
        return [low]
    ratio = (high / low) ** (1 / (count - 1))
    return [low * ratio**i for i in range(count)]


class PerplexityPlot(Vertical):
    """The bordered panel: it keeps the points and titles itself; the chart inside is added after mounting."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: list[tuple[int, float]] = []
        self._dirty = True
        self._next_draw = 0.0  # time.monotonic() before which the chart is not rebuilt
        self._shows_points = False  # the chart drawn last had points
        self.chart: Any = None  # tui.widgets.plot_chart.Chart, once added
        self.border_title = "Perplexity: waiting for the first epoch"

    def on_mount(self) -> None:
        self.call_after_refresh(self.add_chart)

    def add_chart(self) -> None:
        from tui.widgets.plot_chart import Chart

        if self.chart is None and self.is_attached:  # not when the app is already closing (a signal at start-up)
            self.chart = Chart(on_resize=self._chart_resized)
            self.mount(self.chart)

    def _chart_resized(self) -> None:
        self._dirty = True
        self.redraw(force=True)  # a stretched old chart would look broken

    def add(self, epoch: int, perplexity: float) -> None:
        if math.isfinite(perplexity) and perplexity > 0:  # a log scale has no place for inf or 0
            self.points.append((epoch, perplexity))
            self._dirty = True

    def reset(self) -> None:
        self.points.clear()
        self._dirty = True

    def _retitle(self) -> None:
        if not self.points:
            self.border_title = "Perplexity: waiting for the first epoch"
        else:
            epoch, latest = self.points[-1]
            self.border_title = f"Perplexity {latest:,.2f} · epoch {epoch} · log scale"

    def redraw(self, force: bool = False) -> None:
        """Retitle, and rebuild the chart if points changed since the last rebuild and REDRAW_SECONDS have passed
        (or force). Called from the app's refresh timer, which also draws what a skipped call left."""
        if not self._dirty:
            return
        chart = self.chart
        if chart is None or not chart.size.width:  # not added or not laid out yet: drawn when it is
            self._retitle()
            return
        if not force and self._shows_points and time.monotonic() < self._next_draw:
            return  # (an empty chart is never kept waiting: a new or resumed run's first points show at once)
        self._retitle()  # with the chart, so the title's epoch is always the axis's last
        self._dirty = False
        self._next_draw = time.monotonic() + REDRAW_SECONDS
        self._shows_points = bool(self.points)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        width, height = chart.size.width, chart.size.height
        # Two braille dots per cell column: more points than that cannot be told apart.
        shown = thin(self.points, max(2, 2 * max(10, width - 8)))
        if shown:
            plt.yscale("log")  # plotext's log scale fails on an empty plot: only with data
            epochs = [e for e, _ in shown]
            values = [p for _, p in shown]
            plt.plot(epochs, values, marker="braille")
            first, last = epochs[0], max(epochs[-1], epochs[0] + 1)
            plt.xlim(first, last)
            plt.xticks(epoch_ticks(first, last, max(2, (width + 2) // 10)))
            ticks = log_ticks(min(values), max(values), max(2, min(5, (height - 1) // 2)))
            plt.yticks(ticks, [compact_number(t) for t in ticks])  # short labels leave the curve its width
        chart.refresh()
