"""The rnn-tui app: its keys, its screens, and quitting.

The app is thin on purpose, in the manner of harlequin and posting: tui.app.main_screen.MainScreen composes the
panels and exposes them as typed properties; tui.app.run_control.RunControl (app.run_control) starts runs, puts the
engine's events on the panels and acts on the training keys; tui.app.checkpoint_flow.CheckpointFlow (app.checkpoints)
saves and loads; every modal screen is in tui.app.screens. Messages from worker threads arrive here and go to the
part that owns them.

Nothing here imports torch at module level: the first frame is drawn while a daemon thread imports it
(tui.app.worker.EngineLoader). The screens behind keys (F1, F4, F9, F10, F12, ctrl+s, ctrl+o) are imported when first
opened, also to keep the first frame early. Engine events reach the UI through an EventBuffer drained every
REFRESH_SECONDS; generation, save and load run in thread workers, so the UI never waits on torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import sys
import termios
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.events import Event, InputEvent
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget

from tui.app.checkpoint_flow import DEFAULT_CHECKPOINT, CheckpointFlow
from tui.app.generation_flow import GenerationFlow
from tui.app.main_screen import MainScreen
from tui.app.messages import (
    CheckpointFailed,
    CheckpointLoaded,
    CheckpointSaved,
    ContinueChecked,
    Generated,
    GenerateFailed,
    Loading,
    RunEnded,
    SessionFailed,
    SessionReady,
)
from tui.app.run_control import RunControl
from tui.app.widgets.generate import GenerateRequested
from tui.app.widgets.settings import LiveSettingSubmitted, StructuralChanged
from tui.cli import AppOptions
from tui.served import SERVED_NOTE, SERVED_REFUSES, served_mode, shown

if TYPE_CHECKING:  # imported when F12 first opens
    from tui.app.screens.sweep_state import SweepState

# Widgets refresh this often; the trainer reports every batch, the buffer keeps only the latest progress.
REFRESH_SECONDS = 0.25
# How long quitting waits for the training thread (it stops at the next batch boundary, well under this).
QUIT_WAIT_SECONDS = 1.0
# The GIL is handed over this often. Python's default (5 ms) measured best: 2 ms and 1 ms slowed training
# without making a 20 ms UI timer less late (bench/app_responsiveness.py --switch; the README has numbers).
SWITCH_INTERVAL_SECONDS = 0.005


class RnnTuiApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "rnn-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help", id="help", tooltip="every key, and which settings apply live"),
        # F2 is named in the Generate panel's title; left out of the footer so every other key fits at 100 columns.
        Binding("f2", "focus_prefix", "Prefix", id="focus-prefix", show=False, tooltip="type a prefix; Enter"),
        Binding("f3", "focus_settings", "Settings", id="focus-settings", show=False, tooltip="the settings form"),
        Binding("f4", "next_char", "Why?", id="next-char", tooltip="top candidates; saliency of earlier characters"),
        Binding("f5", "toggle_pause", "Pause", id="pause", tooltip="pause or resume training"),
        # F6 only works while paused, when the Status panel names it: left out of the footer so F11 fits at 100 columns.
        Binding("f6", "step", "Step", id="step", show=False, tooltip="while paused: train one more epoch, then pause"),
        Binding("f7,ctrl+r", "restart", "Restart", id="restart", tooltip="start over with the form's settings"),
        Binding("f8", "stop", "Stop", id="stop", tooltip="stop training (the weights stay for generating)"),
        Binding("f9", "hidden_units", "Units", id="hidden-units", tooltip="a text coloured by a hidden unit or a gate"),
        Binding("f10", "runs", "Runs", id="runs", tooltip="runs compared on one plot; CSV export"),
        Binding("f11", "lab", "Lab", id="lab", tooltip="why training behaves: gradients, gates, memory, baselines"),
        Binding(
            "f12",
            "sweep",
            "Sweep",
            id="sweep",
            show=False,
            tooltip="Optuna sweep in other processes: trials, best, compare",
        ),
        # Named in the Perplexity panel's title; the footer is full at 100 columns.
        Binding(
            "ctrl+g",
            "plot_mode",
            "Gradients",
            id="plot-mode",
            show=False,
            tooltip="the Perplexity panel: gradient norm per step before clipping (log scale, θ as a line), or back",
        ),
        Binding("ctrl+s", "save", "Save", id="save", tooltip="save a checkpoint"),
        Binding("ctrl+o", "load", "Load", id="load", tooltip="load a checkpoint: continue it, or just generate"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True, tooltip="stop training and leave"),
    ]

    def __init__(self, options: AppOptions) -> None:
        super().__init__()
        self.options = options
        base_config = options.config
        self.main = MainScreen(base_config)
        self.run_control = RunControl(self, base_config)
        self.generation = GenerationFlow(self, self.run_control)  # the generate box's requests
        # Served to a browser (rnn-tui serve): files stay in the session's directory, the corpus is the server's,
        # and a session nobody touches pauses its training so the others get the cores.
        self.served = served_mode()
        first_checkpoint = options.resume or options.save or DEFAULT_CHECKPOINT
        if self.served is not None:
            first_checkpoint = DEFAULT_CHECKPOINT  # the server's --resume is not the visitor's to overwrite
        self.checkpoints = CheckpointFlow(self, first_checkpoint)
        self.handle_signals = False  # run_app sets it: SIGTERM/SIGHUP quit cleanly (tests leave pytest's own)
        self.sweep_state: SweepState | None = None  # once F12 has opened
        self._quitting_on_signal = False
        self.exit_note: str | None = None  # told on stderr once the app has left the screen (where weights went)
        self._last_input = time.monotonic()
        self.leave_confirmed = False  # served: ctrl+q's question answered "leave"
        self.releasing = False  # served: idle past the release limit, leaving

    def on_mount(self) -> None:
        if self.handle_signals:  # before the first frame: a signal from then on quits cleanly
            self._handle_signals(install=True)

    def get_default_screen(self) -> MainScreen:
        return self.main  # the first screen of the stack, and the one App.query looks in

    def on_main_screen_ready(self, message: MainScreen.Ready) -> None:
        """The main screen's panels exist (the default screen is composed after the App's own mount)."""
        self.set_interval(REFRESH_SECONDS, self.refresh_panels)
        self.main.prefix.focus()
        if self.served is not None:
            self.main.status.border_subtitle = SERVED_NOTE
            self.call_after_refresh(self._lock_corpus)
            limits = [limit for limit in (self.served.idle_seconds, self.served.release_seconds) if limit > 0]
            if limits:
                self.set_interval(min(5.0, min(limits) / 2), self._pause_if_idle)
        # Importing torch holds the GIL for seconds: begin only once the first frame is on screen.
        self.call_after_refresh(self._first_run)

    def _first_run(self) -> None:
        self.run_control.loader.start()
        self.run_control.start(dict(self.options.overrides), resume=self.options.resume, paused=self.options.paused)

    def refresh_panels(self) -> None:
        with contextlib.suppress(NoMatches):  # the app is closing and its widgets are gone
            self.main.fit(self.size)
            self.run_control.refresh()

    # ----- served mode -----

    async def on_event(self, event: Event) -> None:
        if isinstance(event, InputEvent):
            self._last_input = time.monotonic()
        await super().on_event(event)

    def _lock_corpus(self) -> None:
        corpus = self.main.settings.widget("corpus")
        corpus.disabled = True
        corpus.tooltip = "served: the corpus is set by the server"

    def _pause_if_idle(self) -> None:
        assert self.served is not None
        idle = time.monotonic() - self._last_input
        if self.served.idle_seconds and idle >= self.served.idle_seconds:
            self.run_control.keys.pause_if_idle(idle)
        if self.served.release_seconds and idle >= self.served.release_seconds:
            from tui.app.screens.served_quit import release_idle_seat

            release_idle_seat(self, idle)

    # ----- messages from the workers and the panels, each to the part that owns it -----

    def on_loading(self, message: Loading) -> None:
        self.run_control.loading(message)

    def on_session_ready(self, message: SessionReady) -> None:
        self.run_control.session_ready(message)

    def on_session_failed(self, message: SessionFailed) -> None:
        self.run_control.session_failed(message)

    def on_run_ended(self, message: RunEnded) -> None:
        self.run_control.run_ended(message)

    def on_live_setting_submitted(self, message: LiveSettingSubmitted) -> None:
        self.run_control.keys.live_setting(message)

    def on_structural_changed(self, message: StructuralChanged) -> None:
        self.run_control.keys.structural_changed()

    def on_generate_requested(self, message: GenerateRequested) -> None:
        self.generation.generate(message)

    def on_generated(self, message: Generated) -> None:
        self.generation.generated(message)

    def on_generate_failed(self, message: GenerateFailed) -> None:
        self.generation.generate_failed(message)

    def on_checkpoint_saved(self, message: CheckpointSaved) -> None:
        self.checkpoints.saved(message)

    def on_checkpoint_failed(self, message: CheckpointFailed) -> None:
        self.checkpoints.failed(message)

    def on_checkpoint_loaded(self, message: CheckpointLoaded) -> None:
        self.checkpoints.loaded(message)

    def on_continue_checked(self, message: ContinueChecked) -> None:
        self.checkpoints.continue_checked(message)

    # ----- actions (keys, command palette) -----

    def action_toggle_pause(self) -> None:
        self.run_control.keys.toggle_pause()

    def action_step(self) -> None:
        self.run_control.keys.step()

    def action_stop(self) -> None:
        self.run_control.keys.stop()

    def action_restart(self) -> None:
        self.run_control.keys.restart()

    def action_save(self) -> None:
        self.checkpoints.save()

    def action_load(self) -> None:
        self.checkpoints.load()

    def action_focus_prefix(self) -> None:
        self.main.prefix.focus()

    def action_focus_settings(self) -> None:
        self.main.settings.widget("lr").focus()

    def action_next_char(self) -> None:
        from tui.app.screens.next_char import open_next_char

        open_next_char(self)

    def action_hidden_units(self) -> None:
        from tui.app.screens.hidden_units import open_hidden_units

        open_hidden_units(self)

    def action_plot_mode(self) -> None:
        self.main.plot.toggle_mode()
        self.run_control.feed_gradients()

    def action_runs(self) -> None:
        from tui.app.screens.runs_compared import open_runs

        open_runs(self)

    def action_lab(self) -> None:
        from tui.app.screens.lab import LabScreen, open_lab

        if isinstance(self.screen, LabScreen):
            self.screen.dismiss()
            return
        open_lab(self)

    def action_sweep(self) -> None:
        from tui.app.screens.sweep import SweepScreen, open_sweep

        if isinstance(self.screen, SweepScreen):
            self.screen.dismiss()
            return
        if self.served is not None:  # a browser tab starting processes and database files on the server: no
            self.notify("sweeps run from a terminal: rnn-tui sweep (not in a served session)", severity="warning")
            return
        open_sweep(self)

    def action_help(self) -> None:
        from tui.app.screens import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        keys = [(b.key, b.description, b.tooltip) for b in self.BINDINGS if isinstance(b, Binding)]
        if self.served is not None:  # served help lists only what works there (sweeps run from a terminal)
            keys = [key for key in keys if key[0] not in SERVED_REFUSES]
        self.push_screen(HelpScreen(keys))

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """As Textual's, without markup by default: messages carry typed text (a path like `[/]x.ckpt` is a markup
        error otherwise, and `[b]` would be drawn as bold), and a served session's files shown as the visitor
        sees them (not the server's path)."""
        super().notify(shown(message), title=title, severity=severity, timeout=timeout, markup=markup)

    async def action_quit(self) -> None:
        """Stop training at the next batch boundary and leave once its thread is gone (or after a second)."""
        if self.served is not None and not self.leave_confirmed:  # its files go with it: ask, offer the download
            from tui.app.screens.served_quit import LeaveScreen, ask_before_leaving

            if isinstance(self.screen, LeaveScreen):  # ctrl+q twice leaves
                self.screen.dismiss("leave")
            else:
                ask_before_leaving(self)
            return
        await self._stop_training()
        if self.served is not None:  # a download of its weights (Leave's offer) must reach the browser whole first
            from tui.app.screens.served_quit import DOWNLOAD_WAIT_SECONDS
            from tui.web_driver import deliveries_done

            await deliveries_done(self, DOWNLOAD_WAIT_SECONDS)
        self.exit(0)

    def on_unmount(self) -> None:
        # However the app ends (quit, an exit from a test, an error), its training thread must end too:
        # Python joins the worker threads at exit, and a paused trainer would wait forever.
        self.run_control.cancel()
        self._stop_sweep()
        if self.handle_signals:
            self._handle_signals(install=False)

    def _handle_signals(self, install: bool) -> None:
        """SIGTERM and SIGHUP (kill, the terminal closed) end the app as ctrl+q does, the terminal given back as it
        was, with exit code 128 + N; without this the process dies mid-frame and leaves the terminal garbled."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no such signal, not main
                if install:
                    loop.add_signal_handler(signum, self._quit_on_signal, signum)
                else:
                    loop.remove_signal_handler(signum)

    def _quit_on_signal(self, signum: int) -> None:
        if self._quitting_on_signal:  # a second signal: at once (a rescue being written is abandoned whole)
            self.exit(128 + signum)
            return
        self._quitting_on_signal = True
        if terminal_hung_up():
            self._leave_hung_up(signum)
        self.run_worker(self._rescue_then_exit(signum), group="quit", exit_on_error=False)

    def _leave_hung_up(self, signum: int) -> None:
        """The terminal has gone (closed, an SSH link dropped): nothing can be drawn or given back, and Textual's
        output thread blocks the app once its queue to the dead terminal is full (the app then never ended). So:
        stop training, rescue the weights from here (a save is a consistent snapshot while a batch finishes, as
        ctrl+s is), stop a sweep this app started, and leave at once."""
        self.run_control.cancel()
        with contextlib.suppress(Exception):  # nobody is left to tell; leaving matters more
            self.checkpoints.rescue_unsaved(signal.Signals(signum).name)
        self._stop_sweep()
        os._exit(128 + signum)

    def _stop_sweep(self) -> None:
        """A sweep this app started stops with it."""
        if self.sweep_state is not None:
            from tui.app.screens.sweep_state import stop_sweep

            stop_sweep(self)

    async def _rescue_then_exit(self, signum: int) -> None:
        """Stop training; weights trained and saved nowhere go to a rescue file (not in a served session: its folder
        goes with the tab); then leave with 128 + N. run_app says where the weights are, once the screen is gone."""
        await self._stop_training()  # the rescue then has the weights where the trainer stopped
        self.exit_note = await asyncio.to_thread(self.checkpoints.rescue_unsaved, signal.Signals(signum).name)
        await self._mounts_done()
        self.exit(128 + signum)

    async def _mounts_done(self) -> None:
        """Wait (at most QUIT_WAIT_SECONDS) until every widget on screen has mounted. A signal can come with the
        first frame, while the form's Selects are still mounting; leaving then removes their children under
        Textual's mount handler, which raises NoMatches: a traceback on the way out."""
        deadline = time.monotonic() + QUIT_WAIT_SECONDS
        while time.monotonic() < deadline:
            if all(widget.is_mounted for widget in self.screen.walk_children(Widget, with_self=True)):
                return
            await asyncio.sleep(0.01)

    async def _stop_training(self) -> None:
        """Stop the run at its next batch boundary; wait for its thread (at most QUIT_WAIT_SECONDS)."""
        self.run_control.cancel()
        deadline = time.monotonic() + QUIT_WAIT_SECONDS
        while self.run_control.training_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and binding.action != "quit":
                key = binding.key.split(",")[0].upper() if binding.key.startswith("f") else binding.key
                title = f"{binding.description} ({key})"
                yield SystemCommand(title, binding.tooltip, lambda action=binding.action: self.run_action(action))


def terminal_hung_up() -> bool:
    """The terminal the app draws on has hung up: asked for its settings, it answers EIO (not a terminal at all,
    as under a test's pilot, answers ENOTTY)."""
    stream = sys.__stderr__  # where Textual's Linux driver writes
    if stream is None:
        return False
    try:
        termios.tcgetattr(stream.fileno())
    except termios.error as exc:
        return bool(exc.args) and exc.args[0] == errno.EIO
    except (OSError, ValueError):  # a closed stream
        return False
    return False


def run_app(options: AppOptions, fast_exit: bool = True) -> int:
    """Run the app until it quits; return its exit code.

    fast_exit: once the app has ended (its threads too), leave with os._exit instead of returning. Python's
    own shutdown with torch loaded takes one to two seconds on a busy two-core machine, and ctrl+q must
    leave within one. Nothing is lost: the terminal is restored, and every worker (a checkpoint being
    saved included) has ended before App.run() returns.
    """
    served = served_mode()
    if served is not None:  # relative paths (the dialogs' defaults, --save, --metrics) land in the session
        os.chdir(served.session_dir)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        app = RnnTuiApp(options)
        app.handle_signals = True
        result = app.run() or 0
        if app.exit_note:
            with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone, the file is not
                print(app.exit_note, file=sys.stderr, flush=True)
    finally:
        sys.setswitchinterval(previous)
    if fast_exit:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result)
    return result
