"""The Sweep screen's chart (ctrl+g steps through its views): the objective per trial, the best trials' learning
curves, the machines' timeline, and a slice per searched setting."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tui.app.widgets.plot_chart import cannot_draw

if TYPE_CHECKING:  # annotations only: the app loads engine.sweep when F12 reads or starts a sweep
    from engine.sweep import TrialRow


def trial_curve(row: TrialRow) -> list[tuple[int, float]]:
    """(epoch, held-out perplexity, or the training one where none) of a trial's history."""
    points = []
    for entry in row.history:
        value = entry.get("val_perplexity") or entry.get("perplexity")
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            points.append((int(entry["epoch"]), float(value)))
    return points


class ObjectivePlot(PlotextPlot):
    """The chart beside the trials: one of VIEWS (ctrl+g goes to the next), or a slice of one searched setting."""

    view = "trials"  # trials, curves, machines, or slice
    slice_of: str | None = None  # the setting of the slice view
    now: datetime | None = None  # the end of a running trial's bar in the machines view (None: the clock's now)

    def show(self, rows: list[TrialRow]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if self.slice_of is not None:
            self.show_slice(rows, self.slice_of)
            return
        if self.view == "curves":
            self.show_curves(rows)
            return
        if self.view == "machines":
            self.show_machines(rows)
            return
        points = [(r.number, r.best) for r in rows if r.best is not None and math.isfinite(r.best) and r.best > 0]
        if not points:
            plt.title("the objective per trial appears here (log scale)")
        else:
            fallback = any(r.fallback for r in rows)
            plt.title(("TRAINING ppl (fallback)" if fallback else "best held-out ppl") + " per trial, log scale")
            plt.yscale("log")
            plt.scatter([n for n, _ in points], [v for _, v in points], label="trial", marker="dot")
            numbers: list[float] = sorted({n for n, _ in points})  # float: what plotext's xticks is typed to take
            plt.xticks(numbers[:: max(1, len(numbers) // 6)])  # whole trial numbers, at most about six
            complete = sorted((r.number, r.best) for r in rows if r.state == "complete" and r.best is not None)
            if complete:
                best_so_far, lowest = [], math.inf
                for _, value in complete:
                    lowest = min(lowest, value)
                    best_so_far.append(lowest)
                plt.plot([n for n, _ in complete], best_so_far, label="best so far", marker="braille")
        self.refresh()

    def show_curves(self, rows: list[TrialRow], top: int = 5) -> None:
        """The learning curves (held-out perplexity per epoch) of the best trials so far, overlaid."""
        plt = self.plt
        ranked = sorted(
            (r for r in rows if r.best is not None and math.isfinite(r.best) and trial_curve(r)),
            key=lambda r: r.best if r.best is not None else math.inf,
        )[:top]
        if not ranked:
            plt.title("learning curves appear here")
            self.refresh()
            return
        plt.title(f"learning curves, best {len(ranked)}: held-out ppl/epoch")
        plt.yscale("log")
        for row in ranked:
            points = trial_curve(row)
            plt.plot([e for e, _ in points], [v for _, v in points], label=f"#{row.number}", marker="braille")
        epochs: list[float] = sorted({e for r in ranked for e, _ in trial_curve(r)})
        plt.xticks(epochs[:: max(1, len(epochs) // 6)])
        self.refresh()

    def show_machines(self, rows: list[TrialRow]) -> None:
        """Which machine ran which trial when: a bar per trial from its start to its end (minutes), one row a
        machine."""
        plt = self.plt
        timed = [r for r in rows if r.started is not None]
        if not timed:
            plt.title("machines appear here")
            self.refresh()
            return
        origin = min(r.started for r in timed if r.started is not None)
        now = self.now or datetime.now()
        hosts = sorted({r.host or "?" for r in timed})
        plt.title("machines: each trial start→end, minutes")
        for row in timed:
            assert row.started is not None
            start = (row.started - origin).total_seconds() / 60
            end = ((row.finished or now) - origin).total_seconds() / 60
            level = hosts.index(row.host or "?") + 1
            color = {"complete": "green", "pruned": "orange", "failed": "red"}.get(row.state, "cyan")
            plt.plot([start, max(end, start + 0.01)], [level, level], color=color, marker="hd")
        plt.ylim(0.5, len(hosts) + 0.5)
        plt.yticks(list(range(1, len(hosts) + 1)), [h[:12] for h in hosts])
        self.refresh()

    def show_slice(self, rows: list[TrialRow], name: str) -> None:
        """Each complete or pruned trial's best perplexity against one setting (categories at 1, 2, ...)."""
        plt = self.plt
        points = [
            (r.params[name], r.best)
            for r in rows
            if name in r.params and r.best is not None and math.isfinite(r.best) and r.best > 0
        ]
        plt.title(f"slice: best held-out ppl against {name}")
        plt.yscale("log")
        if points and all(isinstance(x, int | float) for x, _ in points):
            values = [float(x) for x, _ in points]
            if min(values) > 0 and max(values) / min(values) > 20:  # a log-range setting such as lr
                plt.xscale("log")
            plt.scatter(values, [v for _, v in points], marker="dot")
        elif points:
            labels = sorted({str(x) for x, _ in points})
            plt.scatter([labels.index(str(x)) + 1 for x, _ in points], [v for _, v in points], marker="dot")
            plt.xticks(list(range(1, len(labels) + 1)), labels)
        self.refresh()

    def render(self) -> RenderResult:
        try:
            return super().render()
        except Exception:  # plotext is fragile on odd sizes: never let it take the app down
            return cannot_draw()


def searched_settings(rows: list[TrialRow], importance_order: list[str]) -> list[str]:
    """The settings the trials vary (more than one value among them), most important first once known."""
    values: dict[str, set[str]] = {}
    for row in rows:
        for name, value in row.params.items():
            values.setdefault(name, set()).add(repr(value))
    varied = sorted(name for name, seen in values.items() if len(seen) > 1)
    ranked = [name for name in importance_order if name in varied]
    return ranked + [name for name in varied if name not in ranked]
