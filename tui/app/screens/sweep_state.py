"""The sweep the app keeps between openings of F12 (SweepState: the study last used and the `rnn-tui sweep` process
started), what the Sweep screen uses of the app (SweepHost), and starting and stopping that process."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from textual.app import App
from textual.message import Message
from textual.screen import Screen

if TYPE_CHECKING:  # annotations only: the app loads engine.sweep when F12 reads or starts a sweep
    from engine.config import TrainConfig
    from engine.run_book import RunBook
    from tui.app.main_screen import MainScreen
    from tui.cli import AppOptions


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
    """What the Sweep screen uses of the run on screen (tui.app.run_control.RunControl)."""

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


def launch(state: SweepState, arguments: list[str], storage: str) -> subprocess.Popen[str]:
    """Start `rnn-tui sweep` with these arguments in a process of its own session (the terminal's keys never reach it,
    and stopping it is our SIGTERM alone); the storage URL goes in its environment, where `ps` does not show it."""
    from engine.sweep import STORAGE_ENV

    command = [sys.executable, "-m", "tui.main", *arguments]
    environment = dict(os.environ)
    environment.pop(STORAGE_ENV, None)
    if storage:
        environment[STORAGE_ENV] = storage
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=environment,
    )  # fmt: skip
    state.process = process
    state.command = shlex.join(["rnn-tui", *arguments]) + (f"  (storage {masked(storage)})" if storage else "")
    return process


def follow(app: App[int], state: SweepState, process: subprocess.Popen[str], screen: type[Screen[Any]]) -> None:
    """Read the sweep's output as it comes; when it ends, tell the Sweep screen (`screen`, when it is on top) or the
    app. A plain thread runs it, not a screen worker: the sweep outlives the screen, and its pipes must be drained."""
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
        if isinstance(app.screen, screen):
            app.screen.post_message(ended)
        elif ended.returncode != 0 and ended.returncode <= 128:
            app.notify(ended.message or "the sweep failed", title="sweep", severity="error")
        else:
            app.notify("the sweep has ended: F12 shows its trials", title="sweep")

    with contextlib.suppress(RuntimeError):  # the app has closed meanwhile
        app.call_from_thread(tell)


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
