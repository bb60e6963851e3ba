"""Run control: starting and replacing runs, the engine's events onto the panels, the training keys, live settings.
The Shapes preview (tui.app.shapes_preview) and generation (tui.app.generation_flow) are flows of their own.

One RunControl per app (app.run_control). It owns the run on screen (a tui.app.worker.RunHandle, whose config is the
trainer's settings as its events report them: the one record of them on this side), the record of its progress
(RunStatus), the weights of a checkpoint loaded for generating, and the runs kept for F10. Panels are reached through
the typed tui.app.main_screen.MainScreen; nothing here computes anything the engine computes. What it uses of the app is
RunHost (tui.app.hosts.WorkerHost extended); it does not import the app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from textual.css.query import NoMatches
from textual.worker import get_current_worker

from engine import events
from engine.config import TrainConfig, stream_length
from engine.data.corpus import Vocab, status_note
from engine.errors import ConfigError
from engine.run_book import Run, RunBook
from tui.app.checkpoint_weights import CheckpointWeights
from tui.app.hosts import WorkerHost
from tui.app.messages import Loading, RunEnded, SessionFailed, SessionReady
from tui.app.run_keys import RunKeys, UnsavedWeights
from tui.app.run_state import RunState, RunStatus
from tui.app.shapes_preview import ShapesPreview
from tui.app.widgets.settings import form_name, form_words
from tui.app.worker import EngineLoader, RunHandle, sessions_opening, train_in_thread

if TYPE_CHECKING:  # torch-backed, or importing the app: annotations only
    from textual.notifications import SeverityLevel
    from textual.screen import Screen
    from textual.worker import Worker

    from engine.lab.gradients import GradientsThroughTime
    from engine.lab.ngram import NgramTable
    from engine.trainer import Trainer
    from tui.app.main_screen import MainScreen
    from tui.cli import AppOptions
    from tui.served import ServedMode


class RunHost(WorkerHost, Protocol):
    """What RunControl uses of the app (tui.app.RnnTuiApp): its options and panels, whether it is served, its
    checkpoints' unsaved weights, Textual's workers and messages (WorkerHost), notifications and dialogs."""

    @property
    def options(self) -> AppOptions: ...
    @property
    def main(self) -> MainScreen: ...
    @property
    def served(self) -> ServedMode | None: ...
    @property
    def checkpoints(self) -> UnsavedWeights: ...
    @property
    def workers(self) -> Iterable[Worker[Any]]: ...
    def push_screen(self, screen: Screen[Any], callback: Callable[[Any], None]) -> object: ...
    def notify(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information", timeout: float | None = None
    ) -> None: ...


class RunControl:
    def __init__(self, app: RunHost, base_config: TrainConfig) -> None:
        self.app = app
        self.base_config = base_config  # the command line's settings: the form's base until a run reports its own
        self.loader = EngineLoader()
        self.current: RunHandle | None = None
        self.status = RunStatus()
        self.vocab: Vocab | None = None  # of the current run
        self.checkpoint: CheckpointWeights | None = None  # generate-only mode: these weights, no training
        self.epoch_lines: dict[int, str] = {}  # epoch → the book's line, for labelling samples
        self.epochs_seen: list[events.EpochEnd] = []
        self.run_book = RunBook()  # every finished or stopped run and loaded checkpoint, for F10
        # A kept run's gradients-through-time curve by its origin ("run 2"), computed when it is kept (its weights go
        # with its trainer); None while computing (tui/app/screens/lab_gradients.py)
        self.lab_curves: dict[str, GradientsThroughTime | None] = {}
        self.failure: str | None = None  # the latest Failed/SessionFailed message
        self.shapes = ShapesPreview(app, self)  # the Shapes panel's preview of the form's settings
        self.keys = RunKeys(app, self)  # the training keys, the idle pause, the form's fields to the trainer
        self._next_run_id = 0
        self.stepping = False
        self._prefix_note: tuple[int, tuple[str, ...]] | None = None  # (run, prefixes) already told to be unsampled
        # The lesson being followed (--lesson, or chosen in the Lab's Lessons tab): each run that ends on its own is
        # observed (tui.lesson_report); None: no lesson.
        self.lesson: str | None = app.options.lesson

    # ----- what is on screen -----

    @property
    def shapes_wanted(self) -> bool:
        """The Shapes preview is drawn again on the next refresh (tui.app.shapes_preview)."""
        return self.shapes.wanted

    @property
    def panels(self) -> MainScreen:
        return self.app.main

    @property
    def config(self) -> TrainConfig | None:
        """The current run's settings as its trainer reports them (None until its session is open)."""
        return self.current.config if self.current is not None else None

    @property
    def shown_config(self) -> TrainConfig | None:
        """The settings of the weights on screen: a loaded checkpoint's, else the run's."""
        return self.checkpoint.config if self.checkpoint is not None else self.config

    @property
    def trainer(self) -> Trainer | None:
        return self.current.trainer if self.current is not None else None

    def show_status(self) -> None:
        self.panels.status.show(self.status, self.shown_config)

    # ----- runs -----

    def start(
        self,
        overrides: dict[str, Any] | TrainConfig,
        resume: str | None = None,
        paused: bool = False,
        notes: tuple[str, ...] = (),
    ) -> None:
        """Stop the current run (if any), wait for its thread to end, then start a new one."""
        self.keep_run()  # the run being replaced stays comparable (F10)
        previous = self.current
        if previous is not None:
            previous.cancel()
        self._next_run_id += 1
        options = self.app.options
        handle = RunHandle(
            self._next_run_id,
            overrides,
            resume=resume,
            corpus_url=options.corpus_url,
            # None: torch's default, as headless. Leaving a core to the UI (one thread on two cores) measured
            # 0.57× the headless speed; two threads 0.85-0.92×, the UI timer's p95 still ≤ 6 ms (README).
            threads=options.threads,
            start_paused=paused,
            notes=notes,
        )
        self.current = handle
        self.vocab = None
        self.checkpoint = None
        self.failure = None
        self.stepping = False
        self.epoch_lines.clear()
        self.epochs_seen.clear()
        self.panels.plot.reset()
        self.status = RunStatus()
        self.status.stage = "waiting for the previous run to stop…" if previous is not None else "starting…"
        self.show_status()
        if self.lesson is not None and previous is None:  # --lesson: its question and what to watch, first
            from engine.lessons import find_lesson

            lesson = find_lesson(self.lesson)
            self.panels.samples.add_note(f"lesson {lesson.name}: {lesson.question} Watch {lesson.watch}")
        self.app.run_worker(self._start_after(previous, handle), group="launch", exit_on_error=False)

    async def _start_after(self, previous: RunHandle | None, handle: RunHandle) -> None:
        # One training thread at a time: torch's seed and thread count are process-wide. A cancelled run's
        # session may still be opening in its daemon thread (a stalled download): wait for it too.
        while previous is not None and (self.training_alive() or sessions_opening()):
            await asyncio.sleep(0.02)
        if self.current is handle:
            self.app.run_worker(
                partial(train_in_thread, handle, self.loader, self.app.post_message),
                name="rnn-tui training",
                group="training",
                thread=True,
                exit_on_error=False,
            )

    def training_alive(self) -> bool:
        return any(not w.is_finished for w in self.app.workers if w.group == "training")

    def cancel(self) -> None:
        """Stop the current run at its next batch boundary (quitting, a loaded checkpoint, a signal)."""
        if self.current is not None:
            self.current.cancel()

    def keep_run(self) -> None:
        """Add the current run to the run book for F10 (a no-op before its first epoch, or when already kept)."""
        run, trainer, config = self.current, self.trainer, self.config
        if run is None or trainer is None or config is None:
            return
        history = tuple(trainer.state.history)  # includes a resumed checkpoint's epochs, unlike the events seen
        stopped = bool(history) and history[-1].epoch < config.epochs
        self.run_book.add(Run(config, history, f"run {run.run_id}", stopped))
        if history:
            from tui.app.screens.lab_gradients import keep_curve

            keep_curve(self, f"run {run.run_id}")

    def _is_current(self, run_id: int) -> bool:
        return self.current is not None and self.current.run_id == run_id

    def loading(self, message: Loading) -> None:
        if self._is_current(message.run_id):
            self.status.stage = message.stage
            self.show_status()

    def session_ready(self, message: SessionReady) -> None:
        if not self._is_current(message.run_id) or self.current is None:
            return
        self.current.config = message.config
        self.vocab = message.vocab
        # How the held-out figure counts unseen characters: as <unk> when the vocabulary has it (d2l-en).
        self.status.unseen_counted = message.vocab.has_unk
        panels = self.panels
        panels.settings.load(message.config)
        if message.config.prefixes:
            panels.generate_box.suggest_prefix(message.config.prefixes[0])
        for note in message.notes:
            if not events.is_hint(note):  # a hint is the Status panel's (one line), not a line of samples
                panels.samples.add_note(note)
        if message.notes:
            self.status.message = status_note(message.notes)
        self.shapes.wanted = True

    def session_failed(self, message: SessionFailed) -> None:
        if self._is_current(message.run_id):
            self.show_failure(message.message)

    def run_ended(self, message: RunEnded) -> None:
        if self._is_current(message.run_id) and self.current is not None:
            self.current.ended = True
            with contextlib.suppress(NoMatches):  # the app is closing and its widgets are gone
                self.refresh()
                if not self.status.state.ended:  # cancelled before training began
                    self.status.state = RunState.STOPPED
                    self.show_status()

    def show_failure(self, message: str) -> None:
        self.failure = message
        status = self.status
        status.state = RunState.FAILED
        status.message, status.message_is_error = message, True
        status.clock_off()
        self.show_status()
        self.panels.samples.add_note(message, error=True)
        self.app.notify(message, title="training failed", severity="error", timeout=8)

    def show_checkpoint(self, weights: CheckpointWeights, note: str) -> None:
        """Generate-only mode: training stops, the checkpoint's weights generate (F7 trains again). The Status panel
        and the plot show the checkpoint's own run, not the run it replaced (whose last events are not applied)."""
        self.cancel()
        self.checkpoint = weights
        from tui.app.screens.lab_gradients import keep_checkpoint_curve

        keep_checkpoint_curve(self, weights)  # before F7 replaces the weights: the Lab draws it beside later runs
        status = RunStatus(state=RunState.CHECKPOINT, epochs=weights.config.epochs)
        status.unseen_counted = weights.vocab.has_unk
        status.device, status.precision = self.status.device, self.status.precision
        plot = self.panels.plot
        plot.reset()
        for record in weights.history:
            status.held_out(record)
            plot.add(record.epoch, record.perplexity, record.val_perplexity, record.fresh_perplexity)
        if weights.history:
            last = weights.history[-1]
            status.epoch, status.perplexity = last.epoch, last.perplexity
            status.grad_norm, status.clipped_share = last.grad_norm, last.clipped_share
        status.message, status.message_is_error = f"generating from {weights.label}; F7 trains again", False
        self.status = status
        if not self._same_split(weights):  # the n-gram lines count another text than the one it trained on
            plot.set_baselines([])
        self.show_status()
        plot.redraw(force=True)
        self.panels.samples.add_note(note)

    def _same_split(self, weights: CheckpointWeights) -> bool:
        """Whether the checkpoint trained and was held out on the text the current run's n-gram lines count."""
        from tui import baselines

        trainer = self.trainer
        if trainer is None or weights.corpus is None:
            return False
        key = baselines.split_key(weights.corpus, stream_length(weights.config))
        return key is not None and key == baselines.corpus_key(trainer)

    # ----- engine events, a few times a second -----

    def refresh(self) -> None:
        """Apply the events the trainer reported since the last refresh, then repaint the panels."""
        run = self.current
        if run is not None:
            queued, progress = run.buffer.take()
            for event in queued:
                self.apply_event(event)
            status = self.status
            if progress is not None and progress.epoch > status.epoch and not status.state.ended:
                status.batch, status.num_batches = progress.batch, progress.num_batches
        self.show_status()
        self.feed_gradients()
        self.panels.plot.redraw()
        if self.shapes.wanted:
            self.shapes.draw()

    def feed_gradients(self) -> None:
        """The trainer's steps since the plot's latest, while the plot shows gradient norms (ctrl+g)."""
        plot, trainer = self.panels.plot, self.trainer
        if plot.mode == "gradients" and trainer is not None and self.checkpoint is None:
            steps = trainer.grad_norms.since(plot.last_step)
            plot.add_gradients([(g.step, g.before, g.clip, g.clipped) for g in steps])
            plot.redraw()

    def _show_baselines(self) -> None:
        """The n-gram reference lines of this run's corpus on the Perplexity plot: from tui.baselines' cache, else
        counted in a thread worker (about a second on the book's split) and drawn when done."""
        from tui import baselines

        trainer, plot = self.trainer, self.panels.plot
        if trainer is None or baselines.corpus_key(trainer) is None:
            plot.set_baselines([])
            self.status.counting = None
            return
        table = baselines.cached(trainer)
        if table is not None:
            self._counted(table)
            return

        def count() -> None:
            found = baselines.compute(trainer)
            if found is not None and not get_current_worker().is_cancelled and self.trainer is trainer:
                self.app.call_from_thread(self._counted, found)

        self.app.run_worker(count, thread=True, exclusive=True, exit_on_error=False, group="baselines")

    def _counted(self, table: NgramTable) -> None:
        """The counting baselines known: the plot's reference lines, and the Status panel's verdict."""
        from tui import baselines

        self.panels.plot.set_baselines(baselines.reference_lines(table))
        self.status.counting = table
        self.show_status()

    def apply_event(self, event: events.Event) -> None:
        if self.checkpoint is not None:  # the run a loaded checkpoint stopped: its last figures are not on screen
            if isinstance(event, events.Finished):
                self.keep_run()  # still comparable in F10
            return
        status, panels = self.status, self.panels
        if isinstance(event, events.Started):
            status.started(event)
            if self.current is not None and self.current.start_paused:
                status.state = RunState.PAUSED
                status.clock_off()  # nothing trains until F5: the wait for the trainer's Paused is not elapsed time
            if event.start_epoch > 0:
                self._show_resumed_history(event.start_epoch)
            self._show_baselines()
        elif isinstance(event, events.EpochEnd):
            status.epoch_end(event)
            self.epochs_seen.append(event)
            self.epoch_lines[event.epoch] = event.book_line()
            panels.plot.add(event.epoch, event.perplexity, event.val_perplexity, event.fresh_perplexity)
        elif isinstance(event, events.Samples):
            panels.samples.add_samples(self.epoch_lines.get(event.epoch, f"epoch {event.epoch}"), event)
            self._tell_unsampled_prefixes()
        elif isinstance(event, events.Paused):
            status.state = RunState.PAUSED
            self.stepping = False
            status.clock_off()
        elif isinstance(event, events.Resumed):
            status.state = RunState.STEPPING if self.stepping else RunState.RUNNING
            status.clock_on()
        elif isinstance(event, events.SettingsApplied):
            if self.current is not None:
                self.current.config = event.config  # the trainer's own, not the changes merged into a copy
            shown = ", ".join(f"{form_name(name)} {value!r}" for name, value in event.changes)
            panels.samples.add_note(f"after epoch {status.epoch}: {shown}")
        elif isinstance(event, events.Finished):
            status.state = RunState.STOPPED if event.stopped else RunState.FINISHED
            status.epoch = event.epoch
            status.test = event.test
            status.clock_off()
            if event.reason:  # it ended early on its own (patience): say why, where the eye goes
                status.message, status.message_is_error = event.reason, False
                panels.samples.add_note(event.reason)
            self.keep_run()
            if not event.stopped:
                self._observe_lesson("")
        elif isinstance(event, events.Failed):
            self.show_failure(event.message)
            self._observe_lesson(event.message)

    def _observe_lesson(self, failure: str) -> None:
        """A lesson's run ended on its own: its observation in the Samples panel and the status line, and in the
        class's CSV when the app was given one (--observations; a served lesson's sessions are)."""
        trainer = self.trainer
        if self.lesson is None or trainer is None:
            return
        from engine.lessons import find_lesson
        from tui.lesson_report import observe_and_collect

        lesson = find_lesson(self.lesson)
        observation, elsewhere, problem = observe_and_collect(lesson, trainer, failure, self.app.options.observations)
        self.panels.samples.add_note(f"lesson {lesson.name}: {observation.text}")
        if not failure:  # a failure's own message stays on the status line
            self.status.message, self.status.message_is_error = f"lesson {lesson.name}: {observation.text}", False
        if elsewhere:
            self.panels.samples.add_note(elsewhere)
        if problem:
            self.panels.samples.add_note(problem, error=True)

    def _tell_unsampled_prefixes(self) -> None:
        """The trainer samples only prefixes made of the corpus's characters: say once which ones it leaves out."""
        config, vocab, run = self.config, self.vocab, self.current
        if config is None or vocab is None or run is None or self._prefix_note == (run.run_id, config.prefixes):
            return
        self._prefix_note = (run.run_id, config.prefixes)
        left_out = [(p, vocab.unknown(p)) for p in config.prefixes if vocab.unknown(p)]
        if left_out:
            named = "; ".join(f"{p!r} ({', '.join(repr(c) for c in chars[:3])})" for p, chars in left_out)
            self.panels.samples.add_note(
                f"not sampled: prefix {named} has characters not in this corpus; set prefixes in the form"
            )

    def _show_resumed_history(self, start_epoch: int) -> None:
        """A resumed run's plot starts with the checkpoint's epochs (else one resumed at its end stays empty)."""
        trainer = self.trainer
        if trainer is None:
            return
        history = [e for e in list(trainer.state.history) if e.epoch <= start_epoch]  # later ones come as events
        for record in history:
            self.panels.plot.add(record.epoch, record.perplexity, record.val_perplexity, record.fresh_perplexity)
            self.status.held_out(record)  # the best held-out epoch may be one of the checkpoint's
        if history:
            self.status.perplexity = history[-1].perplexity

    # ----- served: a session nobody touches pauses its training, so the others get the cores -----

    # ----- settings -----

    def form_config(self, quiet: bool = False) -> TrainConfig | None:
        """The settings form's settings over the run's (or the command line's); None, and said, if a field is bad."""
        try:
            return self.panels.settings.read_config(self.config or self.base_config)
        except ConfigError as exc:
            if not quiet:
                self.app.notify(form_words(exc), title="settings", severity="error")
            return None
