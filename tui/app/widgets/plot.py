"""Perplexity per epoch, live, on a log scale; long runs are thinned to what the width can show.

Up to three curves, told apart by their marks (readable without colour): training perplexity in braille (the
book's number), held-out perplexity in bullets, fresh-state perplexity in dots, and a vertical line at the best
held-out epoch. The legend is the panel's bottom border; with held-out evaluation off only the training curve
is drawn, as before.

The panel is drawn in the app's first frame; its chart (textual-plotext) is imported and added just after
it: importing plotext and drawing an empty chart would make the first frame later for nothing to see.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Literal, TypeVar

from textual.containers import Vertical

if TYPE_CHECKING:  # the chart (and plotext) is imported just after the first frame: see above
    from textual_plotext import Plot

    from tui.app.widgets.plot_chart import Chart

Point = TypeVar("Point")  # what thin() thins: (epoch, perplexity), or a GradStep

# Rebuilding a plotext chart is pure Python and costs the UI thread (and the GIL the trainer needs) more
# than anything else it draws; an epoch can take 0.2 s, so at most this often.
REDRAW_SECONDS = 1.0

# (name, plotext marker, legend mark, legend name). Drawn in this order, so training's braille is on top of the
# fresh-state dots where the two coincide (they do, until the carried state and a zero state part ways).
CURVES = (
    ("fresh", "·", "·", "fresh"),
    ("held-out", "•", "•", "held-out"),
    ("train", "braille", "⣀", "train"),
)
BEST_MARK = "│"  # the vertical line at the best held-out epoch
THETA_MARK = "─"  # the gradients mode's θ (the clip), drawn as a line of these
GRADIENT_STEPS = 20_000  # the gradients mode keeps (what the trainer keeps: engine.training_state.GRAD_LOG_STEPS)
MODE_KEY = "^g"  # ctrl+g, as the footer writes it: perplexity per epoch or gradient norm per step (tui/app.py)
GradStep = tuple[int, float, float, bool]  # (step, gradient norm before clipping, θ then, clipped)


def titled(base: str, other: str, width: int) -> str:
    """base, the scale and the key to the other mode, in at most width cells where it can (shorter forms shorten
    the scale, leave it to the axis, then name only the key)."""
    forms = (
        f"{base} · log scale · {MODE_KEY} {other}",
        f"{base} · log · {MODE_KEY} {other}",
        f"{base} · {MODE_KEY} {other}",
        f"{base} · {MODE_KEY}",
    )
    return next((form for form in forms if len(form) <= width), forms[-1])


def gradient_legend(steps: list[GradStep], width: int) -> str:
    """'⣀ norm before clipping  ─ θ 0.01  clipped 100% of 8 steps' in at most width cells (shorter forms drop words)."""
    if not steps:
        return ""
    theta = steps[-1][2]
    clipped = sum(1 for step in steps if step[3]) / len(steps)
    if theta > 0:
        forms = [
            f"⣀ norm before clipping  {THETA_MARK} θ {theta:g}  clipped {clipped:.0%} of {len(steps):,} steps",
            f"⣀ norm  {THETA_MARK} θ {theta:g}  clipped {clipped:.0%}",
            f"⣀ norm {THETA_MARK} θ {theta:g} {clipped:.0%} clipped",
        ]
    else:
        forms = ["⣀ norm before clipping  clip off", "⣀ norm  clip off"]
    return next((form for form in forms if len(form) <= width), forms[-1])


def legend(curves: list[str], best_epoch: int | None, width: int) -> str:
    """The curves' marks and names, and the best held-out epoch, in at most width cells (shorter forms drop
    the gaps, the word "epoch", then the space after each mark); "" when only the training curve is drawn."""
    if curves == ["train"] and best_epoch is None:
        return ""
    marks = {name: (mark, label) for name, _, mark, label in CURVES}
    names = [name for name, *_ in reversed(CURVES) if name in curves]
    text = ""
    for gap, space, best_word in (("  ", " ", "best epoch "), (" ", " ", "best "), (" ", "", "best ")):
        parts = [f"{marks[name][0]}{space}{marks[name][1]}" for name in names]
        if best_epoch is not None:
            parts.append(f"{BEST_MARK}{space}{best_word}{best_epoch}")
        text = gap.join(parts)
        if len(text) <= width:
            break
    return text


def thin(points: list[Point], max_points: int) -> list[Point]:
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


def baseline_title(baselines: list[tuple[str, float]], room: int, compact: bool = False) -> str:
    """The n-gram reference lines named for the title (" · ─ 2-gram 176 5-gram 137"), as many as fit in room; compact:
    each figure as a whole number (a tight title's form: the lines on the chart keep their three digits)."""
    labels = [f"{label.split()[0]} {value:,.0f}" if compact else label for label, value in baselines]
    for count in range(len(labels), 0, -1):
        text = " · ─ " + " ".join(labels[:count])
        if len(text) <= room:
            return text
    return ""


def named_baselines(baselines: list[tuple[str, float]], room_with_key: int, room: int) -> str:
    """The title's n-gram names: in full, then compact, where the key to the other mode (^g ‖g‖) still fits; else in
    full, then compact, where only ^g does."""
    for space, compact in ((room_with_key, False), (room_with_key, True), (room, False), (room, True)):
        text = baseline_title(baselines, space, compact)
        if text:
            return text
    return ""


def crosses(curves: dict[str, list[tuple[int, float]]], value: float, row: float, x0: float, x1: float) -> bool:
    """Some curve passes within a row of value (log scale) between epochs x0 and x1: a label there would hide it."""
    low, high = value / row, value * row
    for points in curves.values():
        for (e1, p1), (e2, p2) in zip(points, points[1:] or points, strict=False):
            if max(e1, e2) >= x0 and min(e1, e2) <= x1 and min(p1, p2) <= high and max(p1, p2) >= low:
                return True
    return False


def best_point(points: list[tuple[int, float]]) -> tuple[int, float] | None:
    """The (epoch, value) of the lowest value; the earliest one on a tie."""
    return min(points, key=lambda point: (point[1], point[0])) if points else None


class PerplexityPlot(Vertical):
    """The bordered panel: it keeps the points and titles itself; the chart inside is added after mounting."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: list[tuple[int, float]] = []  # training perplexity (the book's)
        self.held_out: list[tuple[int, float]] = []
        self.fresh: list[tuple[int, float]] = []
        self.drawn: list[str] = []  # the curves of the latest rebuild, in CURVES' names
        self.shown: dict[str, list[tuple[int, float]]] = {}  # what the chart draws: the points, thinned
        self.shown_best: tuple[int, float] | None = None
        self._dirty = True
        self._next_draw = 0.0  # time.monotonic() before which the chart is not rebuilt
        self._shows_points = False  # the chart drawn last had points
        self.chart: Chart | None = None  # once added
        # The gradients mode (MODE_KEY): the run's steps as tui.app.run_control hands them over, the latest kept.
        self.mode = "perplexity"  # or "gradients"
        self.gradients: list[GradStep] = []
        self.shown_gradients: list[GradStep] = []
        self.baselines: list[tuple[str, float]] = []  # n-gram reference lines: ("2-gram 176", 176.0) (tui.baselines)
        self.border_title = "Perplexity: waiting for the first epoch"

    def on_mount(self) -> None:
        self.call_after_refresh(self.add_chart)

    def add_chart(self) -> None:
        from tui.app.widgets.plot_chart import Chart

        if self.chart is None and self.is_attached:  # not when the app is already closing (a signal at start-up)
            self.chart = Chart(on_resize=self._chart_resized, draw=self.draw_figure)
            self.mount(self.chart)

    def _chart_resized(self) -> None:
        self._dirty = True
        self.redraw(force=True)  # a stretched old chart would look broken

    def add(self, epoch: int, perplexity: float, held_out: float | None = None, fresh: float | None = None) -> None:
        for points, value in ((self.points, perplexity), (self.held_out, held_out), (self.fresh, fresh)):
            if value is not None and math.isfinite(value) and value > 0:  # a log scale has no place for inf or 0
                points.append((epoch, value))
                self._dirty = True

    def set_baselines(self, lines: list[tuple[str, float]]) -> None:
        """Horizontal reference lines, each labelled at its left end: what counting characters scores."""
        self.baselines = [(label, value) for label, value in lines if math.isfinite(value) and value > 0]
        self._dirty = True

    def reset(self) -> None:
        self.points.clear()
        self.held_out.clear()
        self.fresh.clear()
        self.gradients.clear()
        self._dirty = True

    @property
    def last_step(self) -> int:
        """The latest step the gradients mode has (0: none): the run control hands over the steps after it."""
        return self.gradients[-1][0] if self.gradients else 0

    def add_gradients(self, steps: list[GradStep]) -> None:
        """Steps' gradient norms (a log scale keeps only finite ones above 0), the latest GRADIENT_STEPS kept."""
        kept = [step for step in steps if math.isfinite(step[1]) and step[1] > 0]
        if kept:
            self.gradients += kept
            del self.gradients[:-GRADIENT_STEPS]
            self._dirty = self._dirty or self.mode == "gradients"

    def toggle_mode(self) -> str:
        """Switch between perplexity per epoch and gradient norm per step; return the new mode."""
        self.mode = "gradients" if self.mode == "perplexity" else "perplexity"
        self._dirty = True
        self.redraw(force=True)
        return self.mode

    @property
    def best(self) -> tuple[int, float] | None:
        """The best held-out epoch and its perplexity, or None without held-out figures."""
        return best_point(self.held_out)

    def curves(self) -> dict[str, list[tuple[int, float]]]:
        return {"fresh": self.fresh, "held-out": self.held_out, "train": self.points}

    def _retitle(self) -> None:
        title_width = max(10, self.size.width - 6)
        if self.mode == "gradients":
            if self.gradients:
                self.border_title = titled(f"Gradient norm · step {self.last_step:,}", "perplexity", title_width)
            else:
                self.border_title = f"Gradient norm per step: waiting · {MODE_KEY} perplexity"
            self.border_subtitle = gradient_legend(self.gradients, title_width)
            return
        if not self.points:
            self.border_title = "Perplexity: waiting for the first epoch"
        elif self.held_out:  # the figures are in the status panel; the legend takes the bottom border
            base = f"Perplexity · epoch {self.points[-1][0]}"
            # The baselines are named before the scale and the key's hint: the lines need their names.
            room = title_width - len(base) - len(f" · {MODE_KEY}")
            base += named_baselines(self.baselines, room - len(" ‖g‖"), room)
            self.border_title = titled(base, "‖g‖", title_width)
        else:
            epoch, latest = self.points[-1]
            self.border_title = titled(f"Perplexity {latest:,.2f} · epoch {epoch}", "‖g‖", title_width)
        present = [name for name, points in self.curves().items() if points]
        best = self.best
        self.border_subtitle = legend(
            [name for name, *_ in CURVES if name in present], best[0] if best else None, max(10, self.size.width - 6)
        )

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
        width = chart.size.width
        # Two braille dots per cell column: more points than that cannot be told apart.
        max_points = max(2, 2 * max(10, width - 8))
        if self.mode == "gradients":
            self._shows_points = bool(self.gradients)
            self.shown_gradients = thin(self.gradients, max_points)
            chart.refresh()
            return
        self._shows_points = bool(self.points)
        curves = self.curves()
        self.shown = {name: thin(curves[name], max_points) for name, *_ in CURVES if curves[name]}
        self.shown_best = self.best
        self.drawn = list(self.shown)
        chart.refresh()

    def draw_figure(self, plt: Plot, width: int, height: int) -> None:
        """Set up the chart's plotext figure from what the latest rebuild chose to show.

        Called by the chart every time it is painted, not once per rebuild: plotext's build() changes a log-scale
        figure's data, so a figure built twice (a repaint after a dialog closes) would draw nothing true.
        """
        plt.clear_data()
        plt.clear_figure()
        if self.mode == "gradients":
            self.draw_gradients(plt, width, height)
            return
        shown, best = self.shown, self.shown_best
        if not shown:
            return
        plt.xaxes(True, False)  # no frame above and right: a row more for the curves
        plt.yaxes(True, False)
        plt.yscale("log")  # plotext's log scale fails on an empty plot: only with data
        if best is not None:  # first, so the curves are drawn over it
            plt.vline(best[0], "gray")
        epochs = [e for points in shown.values() for e, _ in points]
        span = [min(epochs), max(max(epochs), min(epochs) + 1)]
        for _, value in self.baselines:  # drawn first, so any curve's point wins its cell; named in the title
            plt.plot(span, [value, value], marker="─", color="gray")
        values = [p for points in shown.values() for _, p in points] + [value for _, value in self.baselines]
        row = (max(values) / min(values)) ** (1 / max(1, height - 3))  # one row's ratio on the log scale
        taken: list[tuple[int, int]] = []  # (end, row) of each label drawn: two never share a place
        for label, value in self.baselines:  # and on the line itself, at 80×24 too, where no curve crosses it
            ends: tuple[tuple[int, Literal["left", "right"]], ...] = ((0, "left"), (1, "right"))
            for end, alignment in ends:
                reach = (span[1] - span[0]) * (len(label) + 1) / max(1, width - 6)
                x0, x1 = (span[0], span[0] + reach) if end == 0 else (span[1] - reach, span[1])
                place = round(math.log(value) / math.log(row))
                if any(e == end and abs(r - place) <= 1 for e, r in taken) or crosses(shown, value, row, x0, x1):
                    continue
                plt.text(label, span[end], value, color="gray", alignment=alignment)
                taken.append((end, place))
                break
        for name, marker, *_ in CURVES:
            if name in shown:
                plt.plot([e for e, _ in shown[name]], [p for _, p in shown[name]], marker=marker)
        values = [p for points in shown.values() for _, p in points] + [value for _, value in self.baselines]
        first, last = min(epochs), max(max(epochs), min(epochs) + 1)
        plt.xlim(first, last)
        x_ticks: list[float] = list(epoch_ticks(first, last, max(2, (width + 2) // 10)))  # plotext's types: floats
        plt.xticks(x_ticks)
        ticks = log_ticks(min(values), max(values), max(2, min(5, (height - 1) // 2)))
        plt.yticks(ticks, [compact_number(t) for t in ticks])  # short labels leave the curve its width

    def draw_gradients(self, plt: Plot, width: int, height: int) -> None:
        """Gradient norm per step before clipping (braille), θ as a line where clipping was on."""
        shown = self.shown_gradients
        if not shown:
            return
        plt.xaxes(True, False)
        plt.yaxes(True, False)
        plt.yscale("log")
        steps = [step for step, *_ in shown]
        clipping = [(step, theta) for step, _, theta, _ in shown if theta > 0]
        if clipping:  # first, so the norms are drawn over it
            plt.plot([step for step, _ in clipping], [theta for _, theta in clipping], marker=THETA_MARK, color="red")
        plt.plot(steps, [norm for _, norm, *_ in shown], marker="braille")
        values = [norm for _, norm, *_ in shown] + [theta for _, theta in clipping]
        first, last = min(steps), max(max(steps), min(steps) + 1)
        plt.xlim(first, last)
        x_ticks: list[float] = list(epoch_ticks(first, last, max(2, (width + 2) // 10)))
        plt.xticks(x_ticks, [f"{t:.0f}" if t < 1000 else compact_number(t) for t in x_ticks])
        ticks = log_ticks(min(values), max(values), max(2, min(5, (height - 1) // 2)))
        plt.yticks(ticks, [tick_label(t) for t in ticks])


def tick_label(value: float) -> str:
    """A gradient norm's axis label: 0.01, 0.25, 3.1, 1.2k (compact_number gives 0.0 for the small ones)."""
    return f"{value:.2g}" if value < 1 else compact_number(value)
