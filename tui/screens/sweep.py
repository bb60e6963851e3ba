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
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, RenderResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Input, Label, Static
from textual_plotext import PlotextPlot

from engine.errors import RnnTuiError, first_line
from tui.widgets.ordered_input import OrderedInput
from tui.widgets.plot_chart import cannot_draw

if TYPE_CHECKING:  # annotations only: the app loads engine.sweep when F12 reads or starts a sweep
    from engine.config import TrainConfig
    from engine.run_book import RunBook
    from engine.sweep import StudyReader, TrialRow
    from tui.cli import AppOptions
    from tui.main_screen import MainScreen

POLL_SECONDS = 1.0
STATE_STYLES = {"complete": "green", "pruned": "yellow", "failed": "red", "running": "cyan", "waiting": "dim"}
SORT_KEYS = ("#", "state", "ppl", "epochs", "time")


@dataclass
class TrialsRead(Message):
    rows: list[TrialRow]
    error: str | None
    source: tuple[str, str] = ("", "")  # the study and storage read: a read of the one before Open is dropped


@dataclass
class SweepEnded(Message):
    returncode: int
    message: str


class SweepState:
    """What the app remembers between openings of the screen: the study, and the sweep process it started."""

    def __init__(self) -> None:
        self.study = "rnn-tui"
        self.storage = ""  # blank: the default SQLite file in the working directory
        self.space = ""  # --search specs separated by spaces; blank: the default space
        self.trials = "10"
        self.epochs = "20"
        self.jobs = "1"
        self.process: subprocess.Popen[str] | None = None
        self.command = ""
        self.last_line = ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM: the sweep stops its trials at their next batch, records them failed and queues them again."""
        if self.running and self.process is not None:
            self.process.send_signal(signal.SIGTERM)


class SweepRuns(Protocol):
    """What the Sweep screen uses of the run on screen (tui.run_control.RunControl)."""

    @property
    def run_book(self) -> RunBook: ...
    def form_config(self, quiet: bool = False) -> TrainConfig | None: ...


class SweepHost(Protocol):
    """What the Sweep screen uses of the app (tui.app.RnnTuiApp) beside Textual's own: the sweep it keeps, the run
    on screen, its options (torch threads) and the settings form (Apply best)."""

    sweep_state: SweepState | None

    @property
    def run_control(self) -> SweepRuns: ...
    @property
    def options(self) -> AppOptions: ...
    @property
    def main(self) -> MainScreen: ...


class SweepOpener(SweepHost, Protocol):
    """What F12 uses of the app: the Sweep screen's host, and opening a screen."""

    def push_screen(self, screen: Screen[Any]) -> object: ...


def sweep_state(app: SweepHost) -> SweepState:
    state = app.sweep_state
    if state is None:
        state = SweepState()
        app.sweep_state = state
    return state


def storage_url(text: str) -> str:
    from engine.sweep import resolve_storage

    return resolve_storage(text.strip() or None)[0]


def masked(url: str) -> str:
    """The storage URL as shown: its password hidden."""
    from engine.sweep import shown_url

    return shown_url(url) if url else url


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
        def key(row: TrialRow) -> str | float:
            if self.sort_key == "state":
                return row.state
            if self.sort_key == "ppl":
                return row.best if row.best is not None else math.inf
            if self.sort_key == "epochs":
                return row.epochs
            if self.sort_key == "time":
                return row.seconds or 0.0
            return row.number

        return sorted(self.rows, key=key, reverse=self.sort_reverse)

    def show_rows(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for row in self.sorted_rows():
            ppl = (
                "-"
                if row.best is None or not math.isfinite(row.best)
                else f"{row.best:,.1f}" + ("*" if row.fallback else "")
            )
            params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.params.items())
            seconds = f"{row.seconds:.0f}s" if row.seconds is not None else "-"
            table.add_row(
                "✓" if row.number in self.marked else " ",
                str(row.number),
                Text(row.state, style=STATE_STYLES.get(row.state, "")),
                ppl,
                f"{row.epochs}/{row.planned}" if row.state == "running" and row.planned else str(row.epochs),
                seconds,
                params,
                key=str(row.number),
            )
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
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.params.items())
        facts = [f"trial {row.number} {row.state}", params or "(no settings yet)"]
        if row.seed is not None:
            facts.append(f"seed {row.seed}")
        if row.best_epoch is not None:
            facts.append(f"best at epoch {row.best_epoch}")
        if row is self.best_row() and row.history and row.history[-1].get("test_perplexity") is not None:
            facts.append(f"test {row.history[-1]['test_perplexity']:,.1f} (reported once, ranks nothing)")
        if row.host:
            facts.append(row.host)
        if row.reason:
            facts.append(row.reason)
        detail.update(Text(" · ".join(facts)))

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
        from engine.sweep import STORAGE_ENV, sweep_arguments

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
        command = [sys.executable, "-m", "tui.main", *arguments]
        environment = dict(os.environ)
        environment.pop(STORAGE_ENV, None)
        storage = self.storage_text()
        if storage:
            environment[STORAGE_ENV] = storage
        # Its own session: the terminal's keys never reach it, and stopping it is our SIGTERM alone.
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
            env=environment,
        )  # fmt: skip
        self.state.process = process
        self.state.command = shlex.join(["rnn-tui", *arguments]) + (f"  (storage {masked(storage)})" if storage else "")
        self.say(Text(f"started: {self.state.command}", style="green"))
        # A plain thread, not a screen worker: the sweep outlives this screen, and its pipes must be drained.
        threading.Thread(target=follow, args=(self.app, self.state, process), daemon=True).start()

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
        from engine.sweep import best_row

        return best_row(self.rows)

    def apply_best(self) -> None:
        best = self.best_row()
        if best is None:
            self.say("no trial has completed yet", "yellow")
            return
        form = self.host.main.settings
        from tui.widgets.settings import FIELDS_BY_NAME, format_field_value

        applied = []
        for name, value in best.form_settings.items():
            if name in FIELDS_BY_NAME:
                text = format_field_value(FIELDS_BY_NAME[name], tuple(value) if isinstance(value, list) else value)
                if form.text_of(name) != text:
                    form.set_text(name, text)
                    applied.append(f"{name}={text}")
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
        from engine.config import TrainConfig
        from engine.events import EpochEnd

        chosen = self.marked or set()
        if not chosen and self.rows:
            table = self.query_one(DataTable)
            chosen = {int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or -1)}
        added = []
        for row in self.rows:
            if row.number not in chosen or not row.history:
                continue
            try:
                config = TrainConfig.from_dict(row.config)
            except RnnTuiError:
                continue
            history = [
                EpochEnd(
                    h["epoch"],
                    h["perplexity"],
                    h["seconds"],
                    h["chars"],
                    h["lr"],
                    h["clip"],
                    val_perplexity=h.get("val_perplexity"),
                )
                for h in row.history
            ]
            self.host.run_control.run_book.add_history(config, history, f"trial {row.number} of {self.state.study}")
            added.append(str(row.number))
        if not added:
            self.say("no trial with epochs is marked (ctrl+t marks the trial under the cursor)", "yellow")
            return
        self.say(Text(f"trials {', '.join(added)} are in F10 Runs compared", style="green"))

    def searched(self) -> list[str]:
        """The settings the trials vary (more than one value among them), most important first once known."""
        values: dict[str, set[str]] = {}
        for row in self.rows:
            for name, value in row.params.items():
                values.setdefault(name, set()).add(repr(value))
        varied = sorted(name for name, seen in values.items() if len(seen) > 1)
        ranked = [name for name in self.importance_order if name in varied]
        return ranked + [name for name in varied if name not in ranked]

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


def follow(app: App[int], state: SweepState, process: subprocess.Popen[str]) -> None:
    """Read the sweep's output as it comes; when it ends, tell the screen (or, when it is closed, the app)."""
    assert process.stdout is not None and process.stderr is not None
    errors: list[str] = []
    stderr = process.stderr
    drain = threading.Thread(target=lambda: errors.extend(stderr.readlines()), daemon=True)
    drain.start()
    for line in process.stdout:
        if line.strip():
            state.last_line = line.strip()
    process.wait()
    drain.join(timeout=5)
    error = next((e.strip() for e in reversed(errors) if e.startswith("rnn-tui")), "")
    ended = SweepEnded(process.returncode, error or state.last_line)

    def tell() -> None:
        screen = app.screen
        if isinstance(screen, SweepScreen):
            screen.post_message(ended)
        elif ended.returncode != 0 and ended.returncode <= 128:
            app.notify(ended.message or "the sweep failed", title="sweep", severity="error")
        else:
            app.notify("the sweep has ended: F12 shows its trials", title="sweep")

    with contextlib.suppress(RuntimeError):  # the app has closed meanwhile
        app.call_from_thread(tell)


def open_sweep(app: SweepOpener) -> None:
    """F12: the Sweep screen, on the study last used (its sweep may still run)."""
    app.push_screen(SweepScreen(sweep_state(app)))


def stop_sweep(app: SweepHost) -> None:
    """On quit: a sweep this app started stops (its running trials are queued again)."""
    state = app.sweep_state
    process = state.process if state is not None else None
    if state is not None and process is not None and state.running:
        state.stop()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
