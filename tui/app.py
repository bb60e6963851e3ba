"""The rnn-tui app: live panels over a trainer running in a thread worker.

Nothing here imports torch at module level: the first frame is drawn while a daemon thread imports it
(tui.worker.EngineLoader). The screens behind keys (F1, F4, F9, F10, ctrl+s, ctrl+o) are imported when first
opened, also to keep the first frame early. Engine events reach the UI through an EventBuffer drained every
REFRESH_SECONDS; generation, shapes, save and load run in thread workers, so the UI never waits on torch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.events import Event, InputEvent
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine import events
from engine.cli import config_overrides
from engine.config import TrainConfig, describe_layers, preset_config
from engine.corpus import Vocab
from engine.errors import ConfigError, RnnTuiError
from engine.runs import RunBook
from tui.checkpoint_flow import plan_continue
from tui.messages import (
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
from tui.run_state import RunState
from tui.served import SERVED_NOTE, served_mode
from tui.widgets.generate import GenerateBox, GenerateRequested
from tui.widgets.plot import PerplexityPlot
from tui.widgets.samples import SamplesLog
from tui.widgets.settings import LiveSettingSubmitted, SettingsForm, StructuralChanged
from tui.widgets.shapes import ShapesTable
from tui.widgets.status import RunStatus, StatusPanel
from tui.worker import EngineLoader, RunHandle, first_line, sessions_opening, train_in_thread

if TYPE_CHECKING:  # torch-backed: the first frame must not wait for torch (tui.worker.EngineLoader imports it)
    from engine.model import CharRNN
    from engine.trainer import Trainer

# Widgets refresh this often; the trainer reports every batch, the buffer keeps only the latest progress.
REFRESH_SECONDS = 0.25
# How long quitting waits for the training thread (it stops at the next batch boundary, well under this).
QUIT_WAIT_SECONDS = 1.0
# The GIL is handed over this often. Python's default (5 ms) measured best: 2 ms and 1 ms slowed training
# without making a 20 ms UI timer less late (bench/app_responsiveness.py --switch; the README has numbers).
SWITCH_INTERVAL_SECONDS = 0.005


DEFAULT_CHECKPOINT = "rnn-tui.ckpt"
# Below this size the form's inputs and drop-downs get too narrow to read (under 80 columns a drop-down shows two
# letters; under 20 rows the samples vanish): the app says so instead of drawing them squashed.
MIN_WIDTH, MIN_HEIGHT = 80, 20
IDLE_MESSAGE = "paused: no input for {idle}; F5 resumes"
NOT_CANCELLED = threading.Event()  # never set: for waits that nothing cancels


def full_overrides(config: TrainConfig) -> dict[str, Any]:
    """Every setting of config, as open_session's overrides (prefixes stay a tuple)."""
    return {f.name: getattr(config, f.name) for f in fields(config)}


class RnnTuiApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "rnn-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help", id="help", tooltip="every key, and which settings apply live"),
        # F2 is named in the Generate panel's title; left out of the footer so every other key fits at 100 columns.
        Binding("f2", "focus_prefix", "Prefix", id="focus-prefix", show=False, tooltip="type a prefix; Enter"),
        Binding("f3", "focus_settings", "Settings", id="focus-settings", show=False, tooltip="the settings form"),
        Binding("f4", "next_char", "Why?", id="next-char", tooltip="each generated character's top candidates"),
        Binding("f5", "toggle_pause", "Pause", id="pause", tooltip="pause or resume training"),
        Binding("f6", "step", "Step", id="step", tooltip="while paused: train one more epoch, then pause"),
        Binding("f7,ctrl+r", "restart", "Restart", id="restart", tooltip="start over with the form's settings"),
        Binding("f8", "stop", "Stop", id="stop", tooltip="stop training (the weights stay for generating)"),
        Binding("f9", "hidden_units", "Units", id="hidden-units", tooltip="a text coloured by one hidden unit"),
        Binding("f10", "runs", "Runs", id="runs", tooltip="runs compared on one plot; CSV export"),
        Binding(
            "f12",
            "sweep",
            "Sweep",
            id="sweep",
            show=False,
            tooltip="Optuna sweep in other processes: trials, best, compare",
        ),
        Binding("ctrl+s", "save", "Save", id="save", tooltip="save a checkpoint"),
        Binding("ctrl+o", "load", "Load", id="load", tooltip="load a checkpoint: continue it, or just generate"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True, tooltip="stop training and leave"),
    ]

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self.args = args
        self.base_config = preset_config(config_overrides(args))  # already validated by engine.cli.parse
        self.loader = EngineLoader()
        self.current_run: RunHandle | None = None  # not self.run: App.run() is the entry point
        self.run_config: TrainConfig | None = None  # the running session's settings (a resumed run: its own)
        self.vocab: Vocab | None = None  # of the current run
        self.checkpoint_source: tuple[CharRNN, Vocab, str] | None = None  # (model, vocab, label): generate-only mode
        self.epoch_lines: dict[int, str] = {}  # epoch → the book's line, for labelling samples
        self.epochs_seen: list[events.EpochEnd] = []
        self.run_book = RunBook()  # every finished or stopped run and loaded checkpoint, for F10
        self.failure: str | None = None  # the latest Failed/SessionFailed message
        self._next_run_id = 0
        self._stepping = False
        self._shapes_wanted = False
        self._last_checkpoint = args.resume or args.save or DEFAULT_CHECKPOINT
        self.handle_signals = False  # run_app sets it: SIGTERM/SIGHUP quit cleanly (tests leave pytest's own)
        self._saved: tuple[Trainer, str] | None = None  # (trainer, position) of the latest successful save
        self._prefix_note: tuple[int, tuple[str, ...]] | None = None  # (run, prefixes) already told to be unsampled
        # Served to a browser (rnn-tui serve): files stay in the session's directory, the corpus is the server's,
        # and a session nobody touches pauses its training so the others get the cores.
        self.served = served_mode()
        self._last_input = time.monotonic()
        if self.served is not None:
            self._last_checkpoint = DEFAULT_CHECKPOINT  # the server's --resume is not the visitor's to overwrite
        self.sweep_state: Any = None  # tui.screens.sweep.SweepState, once F12 has opened

    # ----- layout -----

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            with Vertical(id="left"):
                yield StatusPanel(id="status")
                with Vertical(id="shapes-panel"):
                    yield ShapesTable(id="shapes")
                yield SamplesLog(id="samples")
            with Vertical(id="right"):
                yield PerplexityPlot(id="plot")
                yield SettingsForm(self.base_config, id="settings")
        yield GenerateBox(id="generate")
        yield Static("", id="too-small")
        yield Footer(compact=True, show_command_palette=False)  # ctrl+p still opens it; F1 says so

    def _main(self, selector: str) -> Any:
        """A widget of the main screen, also while a modal screen is on top of it."""
        stack = self.screen_stack  # empty while the app mounts: then the app's own query finds the widget
        return (stack[0] if stack else self).query_one(selector)

    @property
    def status(self) -> StatusPanel:
        return self._main("#status")

    @property
    def plot(self) -> PerplexityPlot:
        return self._main("#plot")

    @property
    def samples(self) -> SamplesLog:
        return self._main("#samples")

    @property
    def generate_box(self) -> GenerateBox:
        return self._main("#generate")

    @property
    def shapes(self) -> ShapesTable:
        return self._main("#shapes")

    @property
    def settings(self) -> SettingsForm:
        return self._main("#settings")

    def on_mount(self) -> None:
        self.query_one("#status").border_title = "Status"
        self.query_one("#samples").border_title = "Samples"
        self.query_one("#shapes-panel").border_title = "Shapes"
        self.set_interval(REFRESH_SECONDS, self.refresh_panels)
        self._main("#prefix").focus()
        if self.handle_signals:
            self._handle_signals(install=True)
        if self.served is not None:
            self.query_one("#status").border_subtitle = SERVED_NOTE
            self.call_after_refresh(self._lock_corpus)
            if self.served.idle_seconds > 0:
                self.set_interval(min(5.0, self.served.idle_seconds / 2), self._pause_if_idle)
        # Importing torch holds the GIL for seconds: begin only once the first frame is on screen.
        self.call_after_refresh(self._first_run)

    # ----- served mode -----

    async def on_event(self, event: Event) -> None:
        if isinstance(event, InputEvent):
            self._last_input = time.monotonic()
        await super().on_event(event)

    def _lock_corpus(self) -> None:
        corpus = self.settings.widget("corpus")
        corpus.disabled = True
        corpus.tooltip = "served: the corpus is set by the server"

    def _pause_if_idle(self) -> None:
        assert self.served is not None
        idle = time.monotonic() - self._last_input
        run = self.current_run
        if idle < self.served.idle_seconds or run is None or run.trainer is None or run.trainer.paused:
            return
        status = self.status.status
        if status.state not in (RunState.RUNNING, RunState.STEPPING):
            return
        run.trainer.pause()
        status.state = RunState.PAUSING
        idle_text = f"{idle / 60:.0f} min" if idle >= 120 else f"{idle:.0f} s"
        status.message, status.message_is_error = IDLE_MESSAGE.format(idle=idle_text), False
        self.status.show()

    def _first_run(self) -> None:
        self.loader.start()
        self.start_run(config_overrides(self.args), resume=self.args.resume, paused=self.args.paused)

    # ----- runs -----

    def _keep_run(self) -> None:
        from tui.screens.runs_compared import keep_run

        keep_run(self)

    def start_run(
        self, overrides: dict[str, Any], resume: str | None = None, paused: bool = False, notes: tuple[str, ...] = ()
    ) -> None:
        """Stop the current run (if any), wait for its thread to end, then start a new one."""
        self._keep_run()  # the run being replaced stays comparable (F10)
        previous = self.current_run
        if previous is not None:
            previous.cancel()
        self._next_run_id += 1
        handle = RunHandle(
            self._next_run_id,
            overrides,
            resume=resume,
            corpus_url=self.args.corpus_url,
            # None: torch's default, as headless. Leaving a core to the UI (one thread on two cores) measured
            # 0.57× the headless speed; two threads 0.85-0.92×, the UI timer's p95 still ≤ 6 ms (README).
            threads=self.args.threads,
            start_paused=paused,
            notes=notes,
        )
        self.current_run = handle
        self.run_config = None
        self.vocab = None
        self.checkpoint_source = None
        self.failure = None
        self._stepping = False
        self.epoch_lines.clear()
        self.epochs_seen.clear()
        self.plot.reset()
        status = self.status.status = RunStatus()
        status.stage = "waiting for the previous run to stop…" if previous is not None else "starting…"
        self.status.show()
        self.run_worker(self._start_after(previous, handle), group="launch", exit_on_error=False)

    async def _start_after(self, previous: RunHandle | None, handle: RunHandle) -> None:
        # One training thread at a time: torch's seed and thread count are process-wide. A cancelled run's
        # session may still be opening in its daemon thread (a stalled download): wait for it too.
        while previous is not None and (self._training_alive() or sessions_opening()):
            await asyncio.sleep(0.02)
        if self.current_run is handle:
            self._train(handle)

    @work(thread=True, exit_on_error=False, group="training", name="rnn-tui training")
    def _train(self, handle: RunHandle) -> None:
        train_in_thread(handle, self.loader, self.post_message)

    def _training_alive(self) -> bool:
        return any(not w.is_finished for w in self.workers if w.group == "training")

    def _current(self, run_id: int) -> bool:
        return self.current_run is not None and self.current_run.run_id == run_id

    def on_loading(self, message: Loading) -> None:
        if self._current(message.run_id):
            self.status.status.stage = message.stage
            self.status.show()

    def on_session_ready(self, message: SessionReady) -> None:
        if not self._current(message.run_id):
            return
        self.run_config = message.config
        self.vocab = message.vocab
        self.status.status.config = message.config
        # How the held-out figure counts unseen characters: as <unk> when the vocabulary has it (d2l-en).
        self.status.status.unseen_counted = message.vocab.has_unk
        self.settings.load(message.config)
        if message.config.prefixes:
            self.generate_box.suggest_prefix(message.config.prefixes[0])
        for note in message.notes:
            self.samples.add_note(note)
        if message.notes:
            self.status.status.message = message.notes[-1]
        self._shapes_wanted = True

    def on_session_failed(self, message: SessionFailed) -> None:
        if self._current(message.run_id):
            self._show_failure(message.message)

    def on_run_ended(self, message: RunEnded) -> None:
        if self._current(message.run_id) and self.current_run is not None:
            self.current_run.ended = True
            self.refresh_panels()
            with contextlib.suppress(NoMatches):  # the app is closing and its widgets are gone
                status = self.status.status
                if not status.state.ended:  # cancelled before training began
                    status.state = RunState.STOPPED
                    self.status.show()

    def _show_failure(self, message: str) -> None:
        self.failure = message
        status = self.status.status
        status.state = RunState.FAILED
        status.message, status.message_is_error = message, True
        status.clock_off()
        self.status.show()
        self.samples.add_note(message, error=True)
        self.notify(message, title="training failed", severity="error", timeout=8)

    # ----- engine events, a few times a second -----

    def refresh_panels(self) -> None:
        with contextlib.suppress(NoMatches):  # the app is closing and its widgets are gone
            self._refresh_panels()

    def _refresh_panels(self) -> None:
        # No media queries in Textual CSS: classes on the screen switch to the layouts for short or narrow terminals.
        # (Checked here: the App's own Resize handler does not reach subclasses on a later resize.)
        if self.screen_stack:
            main = self.screen_stack[0]
            main.set_class(self.size.height < 28, "-short")
            main.set_class(self.size.width < 90, "-narrow")
            tiny = self.size.width < MIN_WIDTH or self.size.height < MIN_HEIGHT
            main.set_class(tiny, "-tiny")
            if tiny:
                self._main("#too-small").update(
                    f"The terminal is {self.size.width}×{self.size.height}; rnn-tui needs at least "
                    f"{MIN_WIDTH}×{MIN_HEIGHT}. Enlarge it: training goes on meanwhile (ctrl+q quits)."
                )
        run = self.current_run
        if run is not None:
            queued, progress = run.buffer.take()
            for event in queued:
                self.apply_event(event)
            status = self.status.status
            if progress is not None and progress.epoch > status.epoch and not status.state.ended:
                status.batch, status.num_batches = progress.batch, progress.num_batches
        self.status.show()
        self.plot.redraw()
        if self._shapes_wanted:
            self._request_shapes()

    def apply_event(self, event: events.Event) -> None:
        status = self.status.status
        if isinstance(event, events.Started):
            status.started(event)
            if self.current_run is not None and self.current_run.start_paused:
                status.state = RunState.PAUSED
                status.clock_off()  # nothing trains until F5: the wait for the trainer's Paused is not elapsed time
            if event.start_epoch > 0:
                self._show_resumed_history(event.start_epoch)
        elif isinstance(event, events.EpochEnd):
            status.epoch_end(event)
            self.epochs_seen.append(event)
            self.epoch_lines[event.epoch] = event.book_line()
            self.plot.add(event.epoch, event.perplexity, event.val_perplexity, event.fresh_perplexity)
        elif isinstance(event, events.Samples):
            self.samples.add_samples(self.epoch_lines.get(event.epoch, f"epoch {event.epoch}"), event)
            self._tell_unsampled_prefixes()
        elif isinstance(event, events.Paused):
            status.state = RunState.PAUSED
            self._stepping = False
            status.clock_off()
        elif isinstance(event, events.Resumed):
            status.state = RunState.STEPPING if self._stepping else RunState.RUNNING
            status.clock_on()
        elif isinstance(event, events.SettingsApplied):
            changes = dict(event.changes)
            if status.config is not None:
                status.config = status.config.with_changes(**changes)
            if self.run_config is not None:
                self.run_config = self.run_config.with_changes(**changes)
            shown = ", ".join(f"{name.replace('_', '-')} {value!r}" for name, value in event.changes)
            self.samples.add_note(f"after epoch {status.epoch}: {shown}")
        elif isinstance(event, events.Finished):
            if self.checkpoint_source is None:  # generate-only mode stopped this run: keep saying so
                status.state = RunState.STOPPED if event.stopped else RunState.FINISHED
            status.epoch = event.epoch
            status.clock_off()
            if event.reason:  # it ended early on its own (patience): say why, where the eye goes
                status.message, status.message_is_error = event.reason, False
                self.samples.add_note(event.reason)
            self._keep_run()
        elif isinstance(event, events.Failed):
            self._show_failure(event.message)

    def _tell_unsampled_prefixes(self) -> None:
        """The trainer samples only prefixes made of the corpus's characters: say once which ones it leaves out."""
        config, vocab, run = self.run_config, self.vocab, self.current_run
        if config is None or vocab is None or run is None or self._prefix_note == (run.run_id, config.prefixes):
            return
        self._prefix_note = (run.run_id, config.prefixes)
        left_out = [(p, vocab.unknown(p)) for p in config.prefixes if vocab.unknown(p)]
        if left_out:
            named = "; ".join(f"{p!r} ({', '.join(repr(c) for c in chars[:3])})" for p, chars in left_out)
            self.samples.add_note(
                f"not sampled: prefix {named} has characters not in this corpus; set prefixes in the form"
            )

    def _show_resumed_history(self, start_epoch: int) -> None:
        """A resumed run's plot starts with the checkpoint's epochs (else one resumed at its end stays empty)."""
        trainer = self.current_run.trainer if self.current_run is not None else None
        if trainer is None:
            return
        history = [e for e in list(trainer.state.history) if e.epoch <= start_epoch]  # later ones come as events
        for record in history:
            self.plot.add(record.epoch, record.perplexity, record.val_perplexity, record.fresh_perplexity)
            self.status.status.held_out(record)  # the best held-out epoch may be one of the checkpoint's
        if history:
            self.status.status.perplexity = history[-1].perplexity

    # ----- settings -----

    def on_live_setting_submitted(self, message: LiveSettingSubmitted) -> None:
        name, value = message.name, message.value
        trainer = self.current_run.trainer if self.current_run is not None else None
        try:
            if trainer is not None and not self.status.status.state.ended:
                trainer.update(**{name: value})
            else:  # nothing is training: just check it, it applies at the next restart
                (self.run_config or self.base_config).with_changes(**{name: value})
        except ConfigError as exc:
            self.settings.set_error(name, str(exc))
            return
        self.settings.clear_error(name)
        self.settings.applied[name] = value

    def on_structural_changed(self, message: StructuralChanged) -> None:
        try:
            self.settings.mark_pending(self.run_config)
        except NoMatches:  # a late message while the app closes
            return
        self._shapes_wanted = True

    def _form_config(self, quiet: bool = False) -> TrainConfig | None:
        try:
            return self.settings.read_config(self.run_config or self.base_config)
        except ConfigError as exc:
            if not quiet:
                self.notify(str(exc), title="settings", severity="error")
            return None

    def _request_shapes(self) -> None:
        if self.vocab is None:
            return  # asked again on the next refresh
        self._shapes_wanted = False
        config = self._form_config(quiet=True)
        if config is None:
            return
        from engine.shapes import layer_shapes  # arithmetic on the sizes: no torch, cheap enough for the UI thread

        pending = self.run_config is not None and bool(config.structural_differences(self.run_config))
        report = layer_shapes(
            config.cell, len(self.vocab), config.hidden, config.layers, config.num_steps, config.batch_size
        )
        self.shapes.show_report(report, pending)

    # ----- generation -----

    def on_generate_requested(self, message: GenerateRequested) -> None:
        if self.checkpoint_source is not None:
            model, vocab, label = self.checkpoint_source
            self._generate(None, model, vocab, label, message)
        elif self.current_run is not None and self.current_run.trainer is not None and self.vocab is not None:
            self._generate(self.current_run.trainer, None, self.vocab, "", message)
        else:
            self.generate_box.show_error("the model is still loading; try again in a moment")

    @work(thread=True, exclusive=True, exit_on_error=False, group="generate")
    def _generate(
        self, trainer: Trainer | None, model: CharRNN | None, vocab: Vocab, label: str, request: GenerateRequested
    ) -> None:
        try:
            from engine.convert import resolve_prefix
            from engine.generate import capped_length, fresh_generator, generate

            prefix, note = resolve_prefix(request.prefix, vocab.char_to_idx)
            length, cap_note = capped_length(request.length)
            note = "; ".join(n for n in (note, cap_note) if n) or None
            if trainer is not None:
                label = f"weights after {trainer.position()}"
                model = trainer.copy_model()  # consistent copy: training goes on meanwhile
            assert model is not None  # callers pass a trainer or a checkpoint's model
            # Its own random generator: a sample drawn from torch's global one would shift the dropout masks of
            # the run training meanwhile, and so its result.
            generator = fresh_generator()
            text = generate(model, vocab, prefix, length, request.temperature, request.top_k, generator)
        except RnnTuiError as exc:
            self.post_message(GenerateFailed(str(exc)))
        except Exception as exc:
            self.post_message(GenerateFailed(f"generation failed: {first_line(exc)}"))
        else:
            self.post_message(Generated(text, note, label))

    def on_generated(self, message: Generated) -> None:
        with contextlib.suppress(NoMatches):  # a worker's late answer while the app closes
            self.generate_box.show_result(message.text, message.note, message.source)

    def on_generate_failed(self, message: GenerateFailed) -> None:
        with contextlib.suppress(NoMatches):
            self.generate_box.show_error(message.message)

    # ----- checkpoints -----

    @work(thread=True, exit_on_error=False, group="checkpoint")
    def _save(self, trainer: Trainer, path: str) -> None:
        from engine.outputs import OutputError

        try:
            saved = trainer.save(path)
        except OutputError as exc:  # a full disk, a folder gone read-only: the run stays, to be saved elsewhere
            self.post_message(CheckpointFailed(f"{exc}; the run is kept: ctrl+s saves it elsewhere"))
        except Exception as exc:
            self.post_message(CheckpointFailed(f"could not save {path}: {first_line(exc)}"))
        else:
            self.post_message(CheckpointSaved(path, saved.position(trainer.batches_per_epoch), trainer))

    @work(thread=True, exit_on_error=False, group="checkpoint")
    def _load_for_generation(self, path: str) -> None:
        try:
            if not self.loader.wait(NOT_CANCELLED):
                raise RnnTuiError(self.loader.error or "torch is not loaded")
            from engine import checkpoint as checkpoints

            loaded = checkpoints.load(path)
            checkpoints.check_shapes(loaded)  # before building: a refused build would still have drawn from torch's RNG
            model = loaded.build_model()
        except RnnTuiError as exc:
            named = str(exc) if path in str(exc) else f"{path}: {exc}"  # which checkpoint, if the error does not say
            self.post_message(CheckpointFailed(f"{named}; the current run goes on"))
        except Exception as exc:
            self.post_message(CheckpointFailed(f"could not load {path}: {first_line(exc)}; the current run goes on"))
        else:
            self.post_message(
                CheckpointLoaded(path, model, loaded.vocab, loaded.config, loaded.position(), tuple(loaded.history))
            )

    @work(thread=True, exit_on_error=False, group="checkpoint")
    def _check_continue(self, path: str, overrides: dict[str, Any], form_epochs: int | None) -> None:
        """Everything that would refuse the checkpoint is found before the current run is stopped (it goes on)."""
        try:
            if not self.loader.wait(NOT_CANCELLED):
                raise RnnTuiError(self.loader.error or "torch is not loaded")
            from engine.session import check_resume

            checkpoint = check_resume(path, overrides)
        except RnnTuiError as exc:
            named = str(exc) if path in str(exc) else f"{path}: {exc}"  # which checkpoint, if the error does not say
            self.post_message(CheckpointFailed(f"{named}; the current run goes on"))
            return
        except Exception as exc:
            self.post_message(CheckpointFailed(f"could not load {path}: {first_line(exc)}; the current run goes on"))
            return
        plan = plan_continue(
            Path(path).name, checkpoint.position(), checkpoint.epoch, checkpoint.config.epochs, form_epochs, overrides
        )
        self.post_message(ContinueChecked(path, plan.overrides, plan.note))

    def on_continue_checked(self, message: ContinueChecked) -> None:
        # The note is told once the session is open, after its own "resumed … at …" (and in the status).
        self.start_run(message.overrides, resume=message.path, notes=(message.note,))

    def on_checkpoint_saved(self, message: CheckpointSaved) -> None:
        if message.trainer is not None:
            self._saved = (message.trainer, message.position)
        self.samples.add_note(f"saved {message.path} ({message.position})")
        self.notify(f"saved {message.path} ({message.position})", title="checkpoint")

    def on_checkpoint_failed(self, message: CheckpointFailed) -> None:
        self.notify(message.message, title="checkpoint", severity="error", timeout=8)
        self.samples.add_note(message.message, error=True)

    def on_checkpoint_loaded(self, message: CheckpointLoaded) -> None:
        if self.current_run is not None:
            self.current_run.cancel()  # generate-only: training stops, the checkpoint's weights generate
        label = f"{Path(message.path).name}, {message.position}"
        self.checkpoint_source = (message.model, message.vocab, label)
        self.run_book.add_history(message.config, message.history, f"checkpoint {Path(message.path).name}")
        status = self.status.status
        status.state = RunState.CHECKPOINT
        status.config = message.config
        status.message, status.message_is_error = f"generating from {label}; F7 trains again", False
        status.clock_off()
        self.status.show()
        self.samples.add_note(f"loaded {message.path} for generating ({message.position})")
        self.action_focus_prefix()

    # ----- actions (keys, command palette) -----

    def _trainer(self) -> Trainer | None:
        """The running trainer, or None after saying why there is none."""
        state = self.status.status.state
        if self.current_run is None or self.current_run.trainer is None:
            self.notify("the model is still loading", severity="warning")
            return None
        if state.ended:
            self.notify(f"training has {state}: F7 restarts with the form's settings", severity="warning")
            return None
        return self.current_run.trainer

    def action_toggle_pause(self) -> None:
        trainer = self._trainer()
        if trainer is None:
            return
        status = self.status.status
        if trainer.paused:
            trainer.resume()
            status.state = RunState.RUNNING
            if status.message.startswith("paused: no input"):
                status.message = ""
        else:
            trainer.pause()
            status.state = RunState.PAUSING  # until the trainer reaches a batch boundary
        self._stepping = False
        self.status.show()

    def action_step(self) -> None:
        trainer = self._trainer()
        if trainer is None:
            return
        if not trainer.paused:
            self.notify("step works while paused: F5 pauses", severity="warning")
            return
        self._stepping = True
        trainer.step()
        self.status.status.state = RunState.STEPPING
        self.status.show()

    def action_stop(self) -> None:
        trainer, run = self._trainer(), self.current_run
        if trainer is None or run is None:
            return
        run.cancel()
        self.status.status.state = RunState.STOPPING
        self.status.show()

    def action_restart(self) -> None:
        config = self._form_config()
        if config is None:
            return
        if not self._preflight(config):
            return
        changed = config.structural_differences(self.run_config or self.base_config)
        status = self.status.status
        training = not status.state.ended and status.epoch > 0
        # e.g. a bad corpus: nothing to lose
        never_started = self.run_config is None and status.state is RunState.FAILED
        unsaved = self._unsaved_position()
        if never_started or (not changed and not training and unsaved is None):  # e.g. after a failure, lower lr
            self._restart(config)
            return
        if changed:
            names = ", ".join(name.replace("_", "-") for name in changed)
            question = f"Restart with new {names}? The model starts from scratch; this run's training is discarded."
        elif training:
            question = f"Restart from scratch? The {status.epoch} epochs trained so far are discarded."
        else:
            question = f"Restart from scratch? This run's weights ({unsaved}) are discarded."
        if unsaved is not None:
            question += " They are not saved: Esc, then ctrl+s, keeps them."

        def answered(yes: bool | None) -> None:
            if yes:
                self._restart(config)

        from tui.screens import ConfirmScreen

        self.push_screen(ConfirmScreen(question), answered)

    def _unsaved_position(self) -> str | None:
        """A finished or stopped run's position ('epoch 12') if its weights are saved nowhere; else None."""
        trainer = self.current_run.trainer if self.current_run is not None else None
        if trainer is None or self.status.status.state not in (RunState.FINISHED, RunState.STOPPED):
            return None
        position = trainer.position()
        if position == "epoch 0" or self._saved == (trainer, position):
            return None
        return position

    def _preflight(self, config: TrainConfig) -> bool:
        """A corpus path that does not exist, or a device this machine lacks, is named in the form before anything
        is stopped: the run training goes on."""
        from engine.corpus import find_corpus

        try:
            name = "corpus"
            if self.served is not None:
                self.served.check_corpus(config.corpus)
            find_corpus(config.corpus)  # no torch needed
            if self.loader.loaded:  # torch is in: asking for the device costs nothing (else the run will say)
                from engine.trainer import resolve_device

                name = "device"
                resolve_device(config.device)
            if self.vocab is not None:  # the machine can hold it (the corpus's vocabulary as now)
                from engine.limits import check_memory

                name = "hidden"
                check_memory(config, len(self.vocab), config.max_chars)
        except RnnTuiError as exc:
            self.settings.set_error(name, str(exc), sticky=True)
            self.notify(str(exc), title="settings", severity="error")
            return False
        return True

    def _restart(self, config: TrainConfig) -> None:
        self.samples.add_note(f"restart: {config.cell}, {config.hidden} hidden, {describe_layers(config.layers)}")
        self.start_run(full_overrides(config))

    def action_save(self) -> None:
        if self.current_run is None or self.current_run.trainer is None:
            self.notify("nothing to save yet: the model is still loading", severity="warning")
            return
        trainer = self.current_run.trainer

        def chosen(path: str | None) -> None:
            if path:
                self._last_checkpoint = path
                self._save_checked(trainer, path)

        from tui.screens import SaveScreen

        self.push_screen(SaveScreen(self._last_checkpoint), chosen)

    def _save_checked(self, trainer: Trainer, path: str, force: bool = False) -> None:
        """Save after checking the target: a directory, the corpus or an unwritable folder is refused; an existing
        file that is not an rnn-tui checkpoint is replaced only if the user says so in a dialog."""
        from engine.outputs import NotOursError, OutputError, check_output_target

        try:
            target = check_output_target(path, "checkpoint", corpus=trainer.corpus.source, force=force)
        except NotOursError as exc:
            from tui.screens import ConfirmScreen

            def answered(yes: bool | None) -> None:
                if yes:
                    self._save_checked(trainer, path, force=True)

            self.push_screen(ConfirmScreen(exc.question, confirm="Replace"), answered)
            return
        except OutputError as exc:
            self.on_checkpoint_failed(CheckpointFailed(f"{exc}; nothing was saved"))
            return
        self._save(trainer, str(target))

    def action_load(self) -> None:
        def chosen(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            mode, path = answer
            self._last_checkpoint = path
            if mode == "generate":
                self._load_for_generation(path)
            else:
                overrides = {"corpus": self.base_config.corpus} if self.base_config.corpus else {}
                try:
                    form_epochs: int | None = self.settings.value("epochs")
                except ConfigError:
                    form_epochs = None
                self._check_continue(path, overrides, form_epochs)

        from tui.screens import LoadScreen

        self.push_screen(LoadScreen(self._last_checkpoint), chosen)

    def action_focus_prefix(self) -> None:
        self._main("#prefix").focus()

    def action_focus_settings(self) -> None:
        self.settings.widget("lr").focus()

    def action_next_char(self) -> None:
        from tui.screens.next_char import open_next_char

        open_next_char(self)

    def action_hidden_units(self) -> None:
        from tui.screens.hidden_units import open_hidden_units

        open_hidden_units(self)

    def action_runs(self) -> None:
        from tui.screens.runs_compared import open_runs

        open_runs(self)

    def action_sweep(self) -> None:
        from tui.screens.sweep import SweepScreen, open_sweep

        if isinstance(self.screen, SweepScreen):
            self.screen.dismiss()
            return
        if self.served is not None:  # a browser tab starting processes and database files on the server: no
            self.notify("sweeps run from a terminal: rnn-tui sweep (not in a served session)", severity="warning")
            return
        open_sweep(self)

    def action_help(self) -> None:
        from tui.screens import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        keys = [(b.key, b.description, b.tooltip) for b in self.BINDINGS if isinstance(b, Binding)]
        self.push_screen(HelpScreen(keys))

    async def action_quit(self) -> None:
        """Stop training at the next batch boundary and leave once its thread is gone (or after a second)."""
        if self.current_run is not None:
            self.current_run.cancel()
        deadline = time.monotonic() + QUIT_WAIT_SECONDS
        while self._training_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.exit(0)

    def on_unmount(self) -> None:
        # However the app ends (quit, an exit from a test, an error), its training thread must end too:
        # Python joins the worker threads at exit, and a paused trainer would wait forever.
        if self.current_run is not None:
            self.current_run.cancel()
        if getattr(self, "sweep_state", None) is not None:  # a sweep this app started stops with it
            from tui.screens.sweep import stop_sweep

            stop_sweep(self)
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
        if self.current_run is not None:
            self.current_run.cancel()
        self.exit(128 + signum)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and binding.action != "quit":
                key = binding.key.split(",")[0].upper() if binding.key.startswith("f") else binding.key
                title = f"{binding.description} ({key})"
                yield SystemCommand(title, binding.tooltip, lambda action=binding.action: self.run_action(action))


def run_app(args: argparse.Namespace, fast_exit: bool = True) -> int:
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
        app = RnnTuiApp(args)
        app.handle_signals = True
        result = app.run() or 0
    finally:
        sys.setswitchinterval(previous)
    if fast_exit:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result)
    return result
