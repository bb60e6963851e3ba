"""Runs compared: the perplexity curves of every finished or stopped run (and loaded checkpoint) on one plot.

The app keeps an engine.runs.RunBook: keep_run() adds the current run when it finishes, is stopped, or is
replaced by a restart. The screen overlays the runs ticked in its list (the running one too, marked
"running"), each labelled by what differs between them, and exports the ticked curves as CSV.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static
from textual_plotext import PlotextPlot

from engine.errors import RnnTuiError
from engine.runs import Run, RunBook
from tui.served import user_path
from tui.widgets.model_source import run_handle
from tui.widgets.plot_chart import cannot_draw

DEFAULT_CSV = "rnn-tui-runs.csv"


def keep_run(app: Any) -> None:
    """Add the app's current run to its run book (a no-op before its first epoch, or when already kept)."""
    run = run_handle(app)
    trainer = run.trainer if run is not None else None
    config = app.run_config
    if trainer is None or config is None:
        return
    history = tuple(trainer.state.history)  # includes a resumed checkpoint's epochs, unlike the events seen
    stopped = bool(history) and history[-1].epoch < config.epochs
    app.run_book.add(Run(config, history, f"run {run.run_id}", stopped))


def compared_runs(app: Any) -> RunBook:
    """The kept runs plus the one still training (not kept yet), for the screen."""
    book = RunBook()
    book.runs = list(app.run_book.runs)
    run = run_handle(app)
    trainer = run.trainer if run is not None else None
    if trainer is not None and app.run_config is not None and not app.status.status.state.ended:
        book.add(Run(app.run_config, tuple(trainer.state.history), f"run {run.run_id}, running"))
    return book


class OverlayPlot(PlotextPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.series: list[Any] = []  # engine.runs.Series

    def show(self, series: list[Any]) -> None:
        self.series = series
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        drawn = [s for s in series if any(math.isfinite(v) and v > 0 for v in s.values)]
        if not drawn:
            plt.title("no runs to compare yet: a run appears here once it has an epoch")
        else:
            plt.title("perplexity per epoch (log scale)")
            plt.yscale("log")
            for curve in drawn:
                points = [(e, v) for e, v in zip(curve.epochs, curve.values, strict=True) if math.isfinite(v) and v > 0]
                plt.plot([e for e, _ in points], [v for _, v in points], label=curve.label, marker="braille")
        self.refresh()

    def render(self) -> RenderResult:
        try:
            return super().render()
        except Exception:  # plotext is fragile on odd sizes: never let it take the app down
            return cannot_draw()


class RunsScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f10", "dismiss", "Close")]
    DEFAULT_CSS = """
    RunsScreen { align: center middle; }
    #runs-box { width: 96%; height: 94%; border: round $accent; background: $surface; padding: 0 1; }
    #runs-body { height: 1fr; }
    #runs-list { width: 44; height: 1fr; }
    #runs-plot { width: 1fr; height: 1fr; }
    #runs-export { height: 1; margin-top: 1; }
    #runs-export Label { color: $text-muted; }
    #runs-csv { width: 1fr; }
    #runs-message { height: 1; }
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
                yield Input(self.csv_path, id="runs-csv", compact=True)
                yield Button("Export (Enter)", id="runs-export-button", compact=True)
            yield Static(self.hint(), id="runs-message")

    def describe(self, index: int, label: str) -> str:
        run = self.book.runs[index]
        last = run.history[-1]
        end = " (stopped)" if run.stopped else ""
        return f"{label}: {last.perplexity:,.1f} at epoch {last.epoch}{end}"

    def hint(self) -> Text:
        if not self.book.runs:
            return Text(
                "Runs appear here when they finish or stop (F8), on restart (F7), or from a loaded checkpoint.",
                style="dim",
            )
        return Text(
            "space ticks a run; ticked runs are drawn and exported as CSV (epoch, one column per run)",
            style="dim",
        )

    def on_mount(self) -> None:
        self.query_one("#runs-box").border_title = "Runs compared"
        self.redraw()

    @property
    def chosen(self) -> list[int]:
        return sorted(self.query_one(SelectionList).selected)

    def redraw(self) -> None:
        self.query_one(OverlayPlot).show(self.book.overlay("perplexity", self.chosen))

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
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
            written = self.book.export_csv(path, "perplexity", self.chosen, force=force)
        except NotOursError as exc:  # an existing file that is not ours: replaced only if the user says so
            from tui.screens import ConfirmScreen

            def answered(yes: bool | None) -> None:
                if yes:
                    self.export(force=True)

            self.app.push_screen(ConfirmScreen(exc.question, confirm="Replace"), answered)
            return
        except RnnTuiError as exc:
            self.error, self.exported = str(exc), None
            message.update(Text(str(exc), style="bold red"))
            return
        self.error, self.exported = None, str(written)
        message.update(Text(f"wrote {len(self.chosen)} curves to {written}", style="green"))


def open_runs(app: Any) -> None:
    """F10: the runs kept so far, and the one training now."""
    app.push_screen(RunsScreen(compared_runs(app)))
