"""The Sweep screen (F12): start an Optuna sweep from the form's settings, watch its trials, take the best.

The sweep runs in other processes (`rnn-tui sweep`, which starts its own workers), so the run in the main
panels keeps training and the UI thread never trains. The screen reads the study back from its storage once a
second in a thread worker (engine.sweep.read_trials), so trials from other processes and machines sharing the
storage show too. "Apply best" writes the best trial's settings into the form, its seed and its own epochs (F7 then
trains that trial again, its best held-out epoch shown as the run's best); "Compare" adds the marked trials'
per-epoch histories to F10 Runs compared; ctrl+g steps through the charts (the objective per trial, the best trials'
learning curves, the machines' timeline, a slice per searched setting with the importances); ctrl+e writes the
trials to a CSV file. One StudyReader (one database engine) serves every read of the storage shown. A storage
URL's password is never shown: the field holds it masked once read, and the sweep started here gets it in its
environment, not its arguments.

Beside it: sweep_state (the sweep the app keeps, its process, what the screen uses of the app), sweep_table (the
table's text), sweep_charts (the chart), sweep_results (Apply best, Compare).
"""

from __future__ import annotations

import os
import shlex
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static

from engine.errors import RnnTuiError, first_line
from engine.sweep.trials import best_row
from tui.app.screens.sweep_charts import ObjectivePlot, searched_settings
from tui.app.screens.sweep_results import add_to_run_book, apply_to_form
from tui.app.screens.sweep_state import (
    SweepEnded,
    SweepHost,
    SweepOpener,
    SweepState,
    follow,
    launch,
    masked,
    storage_url,
    sweep_state,
)
from tui.app.screens.sweep_table import SORT_KEYS, sorted_trials, table_cells, trial_detail
from tui.app.widgets.ordered_input import OrderedInput

if TYPE_CHECKING:  # annotations only: the app loads engine.sweep when F12 reads or starts a sweep
    from engine.sweep import StudyReader, TrialRow


POLL_SECONDS = 1.0


@dataclass
class TrialsRead(Message):
    rows: list[TrialRow]
    error: str | None
    source: tuple[str, str] = ("", "")  # the study and storage read: a read of the one before Open is dropped


class SweepScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f12", "dismiss", "Close"),
        # priority: a text field has focus most of the time, and Input binds ctrl+e (end of line) itself.
        Binding(
            "ctrl+t", "toggle_mark", "Mark trial", priority=True, tooltip="mark the trial under the cursor for Compare"
        ),
        Binding(
            "ctrl+g",
            "charts",
            "Charts",
            priority=True,
            tooltip="the next chart: per trial, learning curves, machines, a slice per searched setting",
        ),
        Binding("ctrl+e", "export", "Export CSV", priority=True, tooltip="write the trials to STUDY-trials.csv"),
    ]
    DEFAULT_CSS = """
    SweepScreen { align: center middle; }
    #sweep-box { width: 98%; height: 96%; border: round $accent; background: $surface; padding: 0 1; }
    .sweep-row { height: 1; }
    .sweep-row Label { color: $text-muted; }
    .sweep-row Input { width: 1fr; }
    #sweep-study { max-width: 16; }
    #sweep-trials, #sweep-epochs, #sweep-jobs { max-width: 6; }
    #sweep-buttons { height: 1; margin-top: 1; }
    #sweep-buttons Button { margin-right: 1; width: auto; min-width: 9; }  /* all five fit at 80 columns */
    #sweep-body { height: 1fr; }
    #sweep-table { width: 2fr; height: 1fr; }
    #sweep-plot { width: 1fr; height: 1fr; margin-left: 1; }
    #sweep-body.wide-chart #sweep-table { width: 1fr; }  /* curves, machines and slices want the room */
    #sweep-body.wide-chart #sweep-plot { width: 2fr; }
    #sweep-detail { height: 3; color: $text-muted; }
    #sweep-message { height: 2; }
    """

    def __init__(self, state: SweepState) -> None:
        super().__init__()
        self.state = state
        self.rows: list[TrialRow] = []
        self.marked: set[int] = set()
        self.sort_key = "#"
        self.sort_reverse = False
        self.message = ""  # the message line's text
        self.ended: SweepEnded | None = None  # how the sweep started here ended
        self._poll_stop = threading.Event()
        self._reader: StudyReader | None = None  # one database engine for every read of the storage shown
        self._reader_lock = threading.Lock()
        self.importance_order: list[str] = []  # the searched settings, most important first, once computed
        self._opening = False  # Open was pressed: its outcome is told, a missing study too
        self.stale = False  # the message line tells of a read that failed: the next good read clears it

    @property
    def host(self) -> SweepHost:
        """What this screen uses of the app (Screen.app is typed as any App; open_sweep checks the app is one)."""
        return cast("SweepHost", self.app)

    def compose(self) -> ComposeResult:
        s = self.state
        with Vertical(id="sweep-box"):
            with Horizontal(classes="sweep-row"):
                yield Label("study ")
                yield OrderedInput(s.study, id="sweep-study", compact=True)
                yield Label(" storage ")
                yield OrderedInput(
                    masked(s.storage), id="sweep-storage", placeholder="./rnn-tui-sweeps.db", compact=True
                )
            with Horizontal(classes="sweep-row"):
                yield Label("space ")
                yield OrderedInput(
                    s.space,
                    id="sweep-space",
                    placeholder="blank: the default space",
                    compact=True,
                )
                yield Label(" trials ")
                yield OrderedInput(s.trials, id="sweep-trials", compact=True)
                yield Label(" epochs ")
                yield OrderedInput(s.epochs, id="sweep-epochs", compact=True)
                yield Label(" jobs ")
                yield OrderedInput(s.jobs, id="sweep-jobs", compact=True)
            with Horizontal(id="sweep-buttons"):
                yield Button("Start", id="sweep-start", variant="primary", compact=True)
                yield Button("Stop", id="sweep-stop", compact=True)
                yield Button("Open", id="sweep-open", compact=True)
                yield Button("Apply best", id="sweep-apply", compact=True)
                yield Button("Compare", id="sweep-compare", compact=True)
            with Horizontal(id="sweep-body"):
                yield DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
                yield ObjectivePlot(id="sweep-plot")
            yield Static("", id="sweep-detail")
            yield Static("", id="sweep-message")

    def on_mount(self) -> None:
        self.query_one("#sweep-box").border_title = "Sweep (Optuna)"
        table = self.query_one(DataTable)
        for key, label in (("mark", " "), ("#", "#"), ("state", "state"), ("ppl", "best ppl"), ("epochs", "ep"),
                           ("time", "time"), ("params", "params")):  # fmt: skip
            table.add_column(label, key=key)
        self.say(self.hint())
        self.query_one("#sweep-space", Input).focus()  # the field most often changed; Enter in it starts
        self.poll_trials()

    def hint(self) -> Text:
        return Text(
            "Start runs `rnn-tui sweep` with the form's settings (space: e.g. lr=1e-4:1e-2:log cell=rnn,gru). "
            "Click a header to sort; ctrl+t marks trials for Compare; ctrl+g next chart (curves, machines, slices); "
            "ctrl+e CSV.",
            style="dim",
        )

    def say(self, text: Text | str, style: str = "", stale: bool = False) -> None:
        self.message = str(text)
        self.stale = stale
        self.query_one("#sweep-message", Static).update(Text(text, style=style) if isinstance(text, str) else text)

    def field(self, name: str) -> str:
        return self.query_one(f"#sweep-{name}", Input).value.strip()

    def storage_text(self) -> str:
        """The storage URL: the field's, or the remembered one when the field still shows it masked."""
        text = self.field("storage")
        return self.state.storage if self.state.storage and text == masked(self.state.storage) else text

    def remember(self) -> None:
        s = self.state
        s.study, s.storage, s.space = self.field("study"), self.storage_text(), self.field("space")
        storage = self.query_one("#sweep-storage", Input)
        if storage.value != masked(s.storage):  # a password typed in stays on screen no longer than this
            storage.value = masked(s.storage)
        s.trials, s.epochs, s.jobs = self.field("trials"), self.field("epochs"), self.field("jobs")

    # ----- reading the study -----

    def reader(self, storage: str) -> StudyReader:
        """The reader of this storage (any thread): the one kept, unless the storage changed."""
        from engine.sweep import StudyReader

        url = storage_url(storage)
        with self._reader_lock:
            if self._reader is None or self._reader.url != url:
                if self._reader is not None:
                    self._reader.close()
                self._reader = StudyReader(url)
            return self._reader

    @work(thread=True, exit_on_error=False, exclusive=True, group="sweep-poll")
    def poll_trials(self) -> None:
        from textual.worker import get_current_worker

        from engine.sweep.study import hide_password

        worker = get_current_worker()
        while not worker.is_cancelled and not self._poll_stop.is_set():
            study, storage = self.state.study, self.state.storage
            try:
                rows, error = self.reader(storage).trials(study), None
            except RnnTuiError as exc:
                rows, error = [], str(exc)
            except Exception as exc:  # the database is busy or went away: say so, try again
                rows, error = [], hide_password(f"cannot read the study: {first_line(exc)}", storage)
            if worker.is_cancelled or self._poll_stop.is_set():
                return
            self.post_message(TrialsRead(rows, error, (study, storage)))
            self._poll_stop.wait(POLL_SECONDS)

    def on_trials_read(self, message: TrialsRead) -> None:
        if message.source != (self.state.study, self.state.storage):
            return  # read before Open switched study or storage: neither its rows nor its error hold now
        if message.error and not self.state.running:
            if not message.error.startswith("no study"):
                self.say(message.error, "bold red", stale=True)
            elif self._opening:  # quiet when the screen opens on a study not made yet; asked for, it is told
                self.say(f"{message.error}: Start creates it", "yellow", stale=True)
            self.rows = []
        elif not message.error:
            self.rows = message.rows
            if self._opening or self.stale:  # a failed read's message no longer holds
                self.say(f"study {self.state.study!r}: {len(self.rows)} trial{'s' * (len(self.rows) != 1)}", "dim")
        self._opening = False
        self.show_rows()

    def sorted_rows(self) -> list[TrialRow]:
        return sorted_trials(self.rows, self.sort_key, self.sort_reverse)

    def show_rows(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for row in self.sorted_rows():
            table.add_row(*table_cells(row, row.number in self.marked), key=str(row.number))
        if self.rows:
            table.move_cursor(row=min(cursor, len(self.rows) - 1))
        self.show_detail()
        self.query_one(ObjectivePlot).show(self.rows)
        title = f"Sweep (Optuna): study {self.state.study!r}, {len(self.rows)} trials"
        if self.state.running:
            title += ", running"
        if any(r.fallback for r in self.rows):
            title += "; * = TRAINING ppl (no held-out figure)"
        self.query_one("#sweep-box").border_title = title

    def cursor_row(self) -> TrialRow | None:
        table = self.query_one(DataTable)
        if not self.rows or table.row_count == 0:
            return None
        number = int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or -1)
        return next((r for r in self.rows if r.number == number), None)

    def show_detail(self) -> None:
        """The trial under the cursor in full (the table's params column is cut on a narrow terminal)."""
        row = self.cursor_row()
        detail = self.query_one("#sweep-detail", Static)
        if row is None:
            detail.update("")
            return
        detail.update(Text(trial_detail(row, row is self.best_row())))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key in SORT_KEYS:
            self.sort_reverse = not self.sort_reverse if key == self.sort_key else False
            self.sort_key = key
            self.show_rows()

    # ----- actions -----

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        handlers = {
            "sweep-start": self.start,
            "sweep-stop": self.stop,
            "sweep-open": self.open_study,
            "sweep-apply": self.apply_best,
            "sweep-compare": self.compare,
        }
        handlers[str(event.button.id)]()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.open_study() if event.input.id in ("sweep-study", "sweep-storage") else self.start()

    def _whole(self, name: str) -> int:
        text = self.field(name)
        try:
            value = int(text)
        except ValueError:
            raise RnnTuiError(f"{name} must be a whole number ≥ 1, got {text!r}") from None
        if value < 1:
            raise RnnTuiError(f"{name} must be a whole number ≥ 1, got {value}")
        return value

    def start(self) -> None:
        from tui.cli.sweep import sweep_arguments

        if self.state.running:
            self.say("a sweep is running: Stop it first (its trials are queued again)", "yellow")
            return
        self.remember()
        config = self.host.run_control.form_config()  # names a bad form field inline
        if config is None:
            self.say("the settings form has an error: fix it first", "bold red")
            return
        try:
            jobs = self._whole("jobs")
            searches = shlex.split(self.field("space"))
            arguments = sweep_arguments(
                config.to_dict(),
                searches,
                self.field("study") or "rnn-tui",
                None,  # the storage goes in the child's environment: a password in argv would show in `ps`
                self._whole("trials"),
                self._whole("epochs"),
                jobs,
                # A share of the cores stays with the run in the main panels: cores ÷ (jobs + 1) threads per job.
                threads=self.host.options.threads or max(1, (os.cpu_count() or 1) // (jobs + 1)),
            )
        except (RnnTuiError, ValueError) as exc:
            self.say(str(exc), "bold red")
            return
        storage = self.storage_text()
        process = launch(self.state, arguments, storage)
        self.say(Text(f"started: {self.state.command}", style="green"))
        # A plain thread, not a screen worker: the sweep outlives this screen, and its pipes must be drained.
        threading.Thread(target=follow, args=(self.app, self.state, process, SweepScreen), daemon=True).start()

    def on_sweep_ended(self, message: SweepEnded) -> None:
        self.ended = message
        if message.returncode == 0:
            self.say(Text(f"sweep finished: {message.message}", style="green"))
        elif message.returncode > 128:  # stopped by a signal (ours)
            self.say("sweep stopped: running trials were queued again; Start continues the study", "yellow")
        else:
            self.say(message.message or f"the sweep ended with code {message.returncode}", "bold red")

    def stop(self) -> None:
        if not self.state.running:
            self.say("no sweep is running", "yellow")
            return
        self.state.stop()
        self.say("stopping: running trials stop at their next batch and are queued again", "yellow")

    def open_study(self) -> None:
        """Read another study (or storage): the table follows it."""
        self.remember()
        self.rows, self.marked = [], set()
        self.say(f"reading study {self.state.study!r}…", "dim")
        self._opening = True
        self.poll_trials()

    def best_row(self) -> TrialRow | None:
        return best_row(self.rows)

    def apply_best(self) -> None:
        best = self.best_row()
        if best is None:
            self.say("no trial has completed yet", "yellow")
            return
        applied = apply_to_form(best, self.host.main.settings)
        self.app.notify(f"trial {best.number}'s settings are in the form: F7 restarts with them", title="sweep")
        self.say(
            Text(f"applied trial {best.number} ({', '.join(applied) or 'the form had them already'}); F7 restarts"),
            "green",
        )

    def action_toggle_mark(self) -> None:
        table = self.query_one(DataTable)
        if not self.rows:
            return
        number = int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or -1)
        self.marked.symmetric_difference_update({number})
        self.show_rows()

    def compare(self) -> None:
        """The marked trials (or the one under the cursor) go into F10 Runs compared."""
        chosen = self.marked or set()
        if not chosen and self.rows:
            table = self.query_one(DataTable)
            chosen = {int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or -1)}
        added = add_to_run_book(self.rows, chosen, self.host.run_control.run_book, self.state.study)
        if not added:
            self.say("no trial with epochs is marked (ctrl+t marks the trial under the cursor)", "yellow")
            return
        self.say(Text(f"trials {', '.join(added)} are in F10 Runs compared", style="green"))

    def searched(self) -> list[str]:
        """The settings the trials vary, most important first once known."""
        return searched_settings(self.rows, self.importance_order)

    def chart_views(self) -> list[tuple[str, str | None]]:
        """The charts ctrl+g steps through: (view, setting of a slice)."""
        return [("trials", None), ("curves", None), ("machines", None), *(("slice", n) for n in self.searched())]

    def action_charts(self) -> None:
        """ctrl+g: the next chart: the objective per trial, the best trials' learning curves, the machines'
        timeline, then a slice for each searched setting (the first of them computes the importances)."""
        plot = self.query_one(ObjectivePlot)
        views = self.chart_views()
        current = (plot.view, plot.slice_of)
        view, setting = views[(views.index(current) + 1) % len(views)] if current in views else views[0]
        plot.view, plot.slice_of = view, setting
        self.query_one("#sweep-body").set_class(view != "trials", "wide-chart")
        plot.show(self.rows)
        words = {
            "trials": "the objective per trial",
            "curves": "the learning curves of the best trials",
            "machines": "which machine ran which trial when",
        }
        if view == "slice" and setting == self.searched()[0]:
            self.say(f"slice of {setting}; computing importances…", "dim")
            self.compute_importances(self.state.storage, self.state.study)
        else:
            self.say(f"chart: {words.get(view, f'slice of {setting}')} (ctrl+g: next)", "dim")

    @work(thread=True, exit_on_error=False, exclusive=True, group="sweep-importances")
    def compute_importances(self, storage: str, study: str) -> None:
        from textual.worker import get_current_worker

        try:
            importances, error = self.reader(storage).importances(study), ""
        except RnnTuiError as exc:
            importances, error = {}, str(exc)
        except Exception as exc:  # the database went away meanwhile
            importances, error = {}, f"cannot read the study: {first_line(exc)}"
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show_importances, importances, error)

    def show_importances(self, importances: dict[str, float], error: str) -> None:
        if error or not importances:
            self.say(error or "no setting varies yet", "yellow")
            return
        shown = "  ".join(f"{name} {share:.0%}" for name, share in importances.items())
        self.say(Text(f"importance: {shown}  (ctrl+g: the next setting's slice)", style="green"))
        self.importance_order = list(importances)
        plot = self.query_one(ObjectivePlot)
        if plot.view == "slice" and self.searched():  # the slices follow the importances: the first one shows
            plot.slice_of = self.searched()[0]
            plot.show(self.rows)

    def action_export(self) -> None:
        """ctrl+e: the trials as CSV in the working directory."""
        from engine.sweep import trials_csv

        if not self.rows:
            self.say("no trials to export", "yellow")
            return
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.state.study) or "study"
        try:
            path = trials_csv(self.rows, f"{name}-trials.csv")
        except OSError as exc:
            self.say(f"cannot write the CSV: {first_line(exc)}", "bold red")
            return
        self.say(Text(f"{len(self.rows)} trials written to {path}", style="green"))

    def on_unmount(self) -> None:
        self._poll_stop.set()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def open_sweep(app: SweepOpener) -> None:
    """F12: the Sweep screen, on the study last used (its sweep may still run)."""
    app.push_screen(SweepScreen(sweep_state(app)))
