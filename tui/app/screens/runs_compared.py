"""Runs compared: the perplexity curves of every finished or stopped run (and loaded checkpoint) on one plot.

Run control keeps an engine.run_book.RunBook: RunControl.keep_run() adds the current run when it finishes, is stopped,
or is replaced by a restart. The screen overlays the runs ticked in its list (the running one too, marked
"running"), each labelled by what differs between them, and exports the ticked curves as CSV. A run with
held-out figures adds its held-out curve in its own colour, drawn in bullets where training is in braille,
so the two kinds are told apart without colour too.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static

from engine.errors import RnnTuiError
from engine.run_book import Run, RunBook, Series
from tui.app.widgets.ordered_input import OrderedInput
from tui.app.widgets.plot import epoch_ticks
from tui.app.widgets.plot_chart import FigurePlot
from tui.served import served_mode, shown, user_path

if TYPE_CHECKING:  # annotations only: the app imports this module
    from tui.app.hosts import RunsOnScreen, ScreenHost

DEFAULT_CSV = "rnn-tui-runs.csv"


def compared_runs(runs: RunsOnScreen) -> RunBook:
    """The kept runs plus the one still training (not kept yet), for the screen."""
    book = RunBook()
    book.runs = list(runs.run_book.runs)
    run, trainer, config = runs.current, runs.trainer, runs.config
    if run is not None and trainer is not None and config is not None and not runs.status.state.ended:
        book.add(Run(config, tuple(trainer.state.history), f"run {run.run_id}, running"))
    return book


# A run's training and held-out curves share its colour; plotext's own names, in its default order.
RUN_COLOURS = ("blue+", "green+", "red+", "cyan+", "magenta+", "yellow", "gray", "orange")
TRAIN_MARKER, HELD_OUT_MARKER = "braille", "•"
# plotext leaves out a title wider than the plot: the longest that fits is used.
TITLES_WITH_HELD_OUT = (
    "perplexity per epoch, log scale: ⣀ train • held-out",
    "perplexity, log scale: ⣀ train • held-out",
    "log scale: ⣀ train • held-out",
    "⣀ train • held-out",
)
TITLES = ("perplexity per epoch (log scale)", "perplexity, log scale")


def drawable(curve: Series) -> list[tuple[int, float]]:
    """A curve's points a log scale can show (no None, inf, nan or 0)."""
    return [
        (e, v) for e, v in zip(curve.epochs, curve.values, strict=True) if v is not None and math.isfinite(v) and v > 0
    ]


class OverlayPlot(FigurePlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.series: list[Series] = []  # training perplexity, one per run
        self.held_out: list[Series] = []  # the same runs' held-out perplexity (None values where a run has none)
        self.drawn: list[tuple[str, str]] = []  # (label, marker) of every curve drawn, for tests and the title

    def show(self, series: list[Series], held_out: list[Series] | None = None) -> None:
        self.series, self.held_out = series, list(held_out or [])
        self.draw_figure()
        self.refresh()

    def draw_figure(self) -> None:
        """Set up the figure afresh: at every paint, as plotext's build() changes a log-scale figure's data."""
        self.drawn = []
        series = self.series
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        held = {curve.label: drawable(curve) for curve in self.held_out}
        runs = [(curve, drawable(curve), held.get(curve.label, [])) for curve in series]
        runs = [(curve, train, val) for curve, train, val in runs if train or val]
        if not runs:
            plt.title("no runs to compare yet: a run appears here once it has an epoch")
        else:
            any_held_out = any(val for _, _, val in runs)
            titles = TITLES_WITH_HELD_OUT if any_held_out else TITLES
            plt.title(next((title for title in titles if len(title) <= self.size.width), titles[-1]))
            plt.yscale("log")
            epochs_drawn = [e for _, train, val in runs for e, _ in (*train, *val)]
            ticks: list[float] = list(epoch_ticks(min(epochs_drawn), max(epochs_drawn), max(2, self.size.width // 12)))
            plt.xticks(ticks)  # whole epochs: plotext's own ticks fall between them (12.5)
            for index, (curve, train, val) in enumerate(runs):
                colour = RUN_COLOURS[index % len(RUN_COLOURS)]
                # Held-out first: the training curve is drawn over it where they meet. Only the training curve is
                # in the legend (the title says what the bullets are), so the legend stays one line a run.
                for points, marker, legend in ((val, HELD_OUT_MARKER, ""), (train, TRAIN_MARKER, curve.label)):
                    if points:
                        epochs, values = [e for e, _ in points], [v for _, v in points]
                        plt.plot(epochs, values, label=legend, marker=marker, color=colour)
                        name = curve.label if marker == TRAIN_MARKER else f"{curve.label} held-out"
                        self.drawn.append((name, marker))


class RunsScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f10", "dismiss", "Close")]
    DEFAULT_CSS = """
    RunsScreen { align: center middle; }
    #runs-box { width: 96%; height: 94%; border: round $accent; background: $surface; padding: 0 1; }
    #runs-body { height: 1fr; }
    #runs-list { width: 44; height: 1fr; text-wrap: wrap; }  /* a run's line wraps rather than lose its best */
    #runs-plot { width: 1fr; height: 1fr; }
    #runs-export { height: 1; margin-top: 1; }
    #runs-export Label { color: $text-muted; }
    #runs-csv { width: 1fr; }
    #runs-message { height: auto; max-height: 3; }  /* its help wraps at 80 columns rather than lose its end */
    #runs-baselines { height: auto; }
    """

    def __init__(self, book: RunBook, csv_path: str = DEFAULT_CSV) -> None:
        super().__init__()
        self.book = book
        self.csv_path = csv_path
        self.exported: str | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        labels = self.book.labels()
        with Vertical(id="runs-box"):
            with Horizontal(id="runs-body"):
                yield SelectionList[int](
                    *[(self.describe(i, label), i, True) for i, label in enumerate(labels)], id="runs-list"
                )
                yield OverlayPlot(id="runs-plot")
            with Horizontal(id="runs-export"):
                yield Label("CSV ")
                yield OrderedInput(self.csv_path, id="runs-csv", compact=True)
                yield Button("Export (Enter)", id="runs-export-button", compact=True)
            yield Static(self.hint(), id="runs-message")
            yield Static(self.baselines(), id="runs-baselines")

    def baselines(self) -> Text:
        """What counting scores on the current run's held-out text (tui.baselines, counted when the run started)."""
        from tui import baselines

        trainer = self.app.run_control.trainer  # type: ignore[attr-defined]
        table = baselines.cached(trainer) if trainer is not None else None
        if table is None:
            return Text("")
        values = "  ".join(f"{n}-gram {v:,.1f}" for n, v in zip(table.n, table.held_out, strict=True))
        shown = Text.assemble(("counting, held-out (this run's text): ", "dim"), values)
        judged = self.app.run_control.status.verdict  # type: ignore[attr-defined]
        if judged is not None:  # this run against counting: its test figure once it has one, else held-out
            shown.append("\n" + judged.line())
        return shown

    def describe(self, index: int, label: str) -> str:
        run = self.book.runs[index]
        last = run.history[-1]
        end = " (stopped)" if run.stopped else ""
        held = [(e.val_perplexity, e.epoch) for e in run.history if e.val_perplexity is not None]
        best = f"; held-out best {min(held)[0]:,.1f} at epoch {min(held)[1]}" if held else ""
        test = f"; test {last.test_perplexity:,.1f}" if last.test_perplexity is not None else ""
        return f"{label}: {last.perplexity:,.1f} at epoch {last.epoch}{end}{best}{test}"

    def hint(self) -> Text:
        if not self.book.runs:
            return Text(
                "Runs appear here when they finish or stop (F8), on restart (F7), or from a loaded checkpoint.",
                style="dim",
            )
        return Text(
            "space ticks a run; the ticked ones are drawn and exported as CSV (train, held-out, fresh)",
            style="dim",
        )

    def on_mount(self) -> None:
        self.query_one("#runs-box").border_title = "Runs compared"
        self.redraw()

    @property
    def chosen(self) -> list[int]:
        return sorted(self.query_one(SelectionList).selected)

    def redraw(self) -> None:
        chosen = self.chosen
        self.query_one(OverlayPlot).show(
            self.book.overlay("perplexity", chosen), self.book.overlay("val_perplexity", chosen)
        )

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged[int]) -> None:
        event.stop()
        self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.export()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.export()

    def export(self, force: bool = False) -> None:
        from engine.outputs import NotOursError

        message = self.query_one("#runs-message", Static)
        path = self.query_one("#runs-csv", Input).value.strip()
        try:
            if not path:
                raise RnnTuiError("type a file name for the CSV")
            if not self.chosen:
                raise RnnTuiError("no run is ticked: tick at least one to export")
            path = user_path(path)  # served: only inside the session's directory
            served = served_mode()
            if served is not None:  # a CSV of a few runs: tens of KiB
                served.check_room(2**16, path if os.path.exists(path) else None)
            written = self.book.export_csv(path, "perplexity", self.chosen, force=force)
        except NotOursError as exc:  # an existing file that is not ours: replaced only if the user says so
            from tui.app.screens import ConfirmScreen

            def answered(yes: bool | None) -> None:
                if yes:
                    self.export(force=True)

            self.app.push_screen(ConfirmScreen(shown(exc.question), confirm="Replace"), answered)
            return
        except RnnTuiError as exc:
            self.error, self.exported = str(exc), None
            message.update(Text(shown(str(exc)), style="bold red"))
            return
        self.error, self.exported = None, str(written)
        if served_mode() is not None and self.app.is_web:  # served in a browser: to the student's computer too
            self.app.deliver_text(written, mime_type="text/csv", encoding="utf-8")
        columns = len(self.book.columns("perplexity", self.chosen))
        message.update(Text(shown(f"wrote {len(self.chosen)} runs ({columns} columns) to {written}"), style="green"))


def open_runs(app: ScreenHost) -> None:
    """F10: the runs kept so far, and the one training now."""
    app.push_screen(RunsScreen(compared_runs(app.run_control)))
