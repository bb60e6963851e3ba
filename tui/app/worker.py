"""The bridge between the training thread and the UI thread.

- EngineLoader imports torch and the engine in a daemon thread, so the first frame never waits for it and a
  quit during the import is not held up by it (a Textual thread worker is joined at exit; a daemon is not).
- EventBuffer is the trainer's listener: it keeps only the latest BatchDone (progress) and queues every other
  event; run control (tui.app.run_control) drains it on the app's timer, so widgets refresh a few times a second
  however fast batches are.
- RunHandle is one training run: its id, its buffer, its trainer once built, its settings as reported, and a
  cancel flag.
- train_in_thread is the body of the training thread worker: load, open the session, run, report. The session is
  opened in a daemon thread (a corpus download can stall on the network): a quit never waits for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message

from engine import events
from engine.config import TrainConfig
from engine.errors import RnnTuiError, first_line, worded
from tui.app.messages import Loading, RunEnded, SessionFailed, SessionReady
from tui.app.widgets.settings import form_name, form_words
from tui.served import shown

if TYPE_CHECKING:  # torch-backed: imported by EngineLoader in the background
    from engine.session import Session
    from engine.trainer import Trainer

Post = Callable[[Message], object]  # App.post_message (its bool result is not used)


NOT_CANCELLED = threading.Event()  # never set: for waits on torch's import that nothing cancels


class EngineLoader:
    """Imports the torch-backed engine modules once, in the background."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._load, name="rnn-tui engine import", daemon=True)
                self._thread.start()

    def _load(self) -> None:
        try:  # imported for their side effect: torch and the engine are loaded, off the UI thread
            import engine.checkpoint
            import engine.data.convert
            import engine.generate
            import engine.session
            import engine.shapes  # noqa: F401
        except Exception as exc:  # a broken torch install: say so instead of dying
            self.error = f"could not load torch: {first_line(exc)}"
        finally:
            self._done.set()

    def wait(self, cancelled: threading.Event) -> bool:
        """Block until loaded; False if cancelled first or loading failed (then .error says why)."""
        self.start()
        while not self._done.wait(0.05):
            if cancelled.is_set():
                return False
        return self.error is None and not cancelled.is_set()

    @property
    def loaded(self) -> bool:
        return self._done.is_set() and self.error is None


class EventBuffer:
    """Thread-safe coalescing queue of engine events: progress is latest-only, everything else is kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: list[events.Event] = []
        self._progress: events.BatchDone | None = None

    def put(self, event: events.Event) -> None:
        with self._lock:
            if isinstance(event, events.BatchDone):
                self._progress = event
            else:
                self._queued.append(event)

    def take(self) -> tuple[list[events.Event], events.BatchDone | None]:
        """Every queued event in order, and the latest progress since the last take (or None)."""
        with self._lock:
            queued, progress = self._queued, self._progress
            self._queued, self._progress = [], None
        return queued, progress


OPENER_NAME = "rnn-tui session"  # the daemon threads opening sessions are named so


def sessions_opening() -> bool:
    """A session is still being opened (a cancelled one too): a new run waits, so two trainers are never built
    at once (building one seeds torch, process-wide)."""
    return any(t.name.startswith(OPENER_NAME) and t.is_alive() for t in threading.enumerate())


class RunCancelled(Exception):
    """Raised by the download's progress callback once the run is cancelled: the download stops there."""


def download_stage(done: int, total: int) -> str:
    """The status panel's line for a corpus download in progress."""
    if total:
        return f"downloading the book's corpus… {done / 1024:,.0f} / {total / 1024:,.0f} KiB ({done / total:.0%})"
    return f"downloading the book's corpus… {done / 1024:,.0f} KiB"


@dataclass
class RunHandle:
    run_id: int
    overrides: dict[str, Any] | TrainConfig  # the settings given explicitly, or a whole config (a restart)
    resume: str | None = None
    corpus_url: str | None = None
    threads: int | None = None
    start_paused: bool = False
    buffer: EventBuffer = field(default_factory=EventBuffer)
    cancelled: threading.Event = field(default_factory=threading.Event)
    trainer: Trainer | None = None  # set by the worker thread once built
    # The trainer's settings as its events report them (SessionReady, then each SettingsApplied): the UI's one
    # record of them, which the Status panel and the settings checks read.
    config: TrainConfig | None = None
    ended: bool = False  # set on the UI side when RunEnded arrives
    notes: tuple[str, ...] = ()  # told with the session's own notes (e.g. how a continued checkpoint's epochs were set)

    def cancel(self) -> None:
        """Stop this run as soon as possible, whatever stage it is in."""
        self.cancelled.set()
        trainer = self.trainer  # read once: the worker may set it concurrently
        if trainer is not None:
            trainer.stop()


def train_in_thread(handle: RunHandle, loader: EngineLoader, post: Post) -> None:
    """Runs in a thread: open the session and train, reporting through post(); never raises."""
    try:
        post(Loading(handle.run_id, "loading torch…"))
        if not loader.wait(handle.cancelled):
            if loader.error:
                post(SessionFailed(handle.run_id, loader.error))
            return
        post(Loading(handle.run_id, "reading corpus…" if not handle.resume else shown(f"loading {handle.resume}…")))
        session = _open_session(handle, post)
        if session is None:  # cancelled while opening
            return
        trainer = session.trainer
        if handle.start_paused:
            trainer.pause()
        handle.trainer = trainer  # before the cancel check: a cancel from now on reaches trainer.stop()
        notes = tuple(
            shown(worded(note, form_name)) for note in (*precision_notes(session), *session.notes, *handle.notes)
        )  # served: the session's own names, never the server's paths
        post(SessionReady(handle.run_id, session.config, trainer.vocab, session.corpus.source, notes))
        if handle.cancelled.is_set():
            return
        trainer.run()  # reports Failed itself instead of raising
    except RunCancelled:
        pass
    except RnnTuiError as exc:
        post(SessionFailed(handle.run_id, form_words(exc)))
    except Exception as exc:  # never a traceback on screen: one line, and the app keeps running
        post(SessionFailed(handle.run_id, f"unexpected error: {first_line(exc)}"))
    finally:
        post(RunEnded(handle.run_id))


def precision_notes(session: Session) -> tuple[str, ...]:
    """In the training thread: what the headless run says of the precision besides its start-up line: the warning
    of a bf16 that misses the quality guard, or the fp32-on-native-bfloat16 hint (engine.precision.fp32_hint, in
    the app's shorter words), measured now (~0.2 s)."""
    from engine.precision import fp32_hint

    config, trainer = session.config, session.trainer
    rows = config.batch_size * config.num_steps
    hint = fp32_hint(
        trainer.precision, trainer.device, len(trainer.vocab), config.hidden, rows, short=True, cell=config.cell
    )
    return tuple(line for line in (trainer.precision.warning, hint) if line)


def _open_session(handle: RunHandle, post: Post) -> Session | None:
    """engine.session.open_session in a daemon thread; the session, or None once the run is cancelled.

    The worker thread waits for it while watching the cancel flag, so quitting during a download that
    stalls on the network is not held up (Textual joins its thread workers at exit; a daemon is not joined).
    """
    from engine.session import open_session

    shown = [-1]  # the last percentage posted: the status panel needs no more than a hundred updates

    def progress(done: int, total: int) -> None:
        if handle.cancelled.is_set():
            raise RunCancelled
        percent = done * 100 // total if total else done // 1024
        if percent != shown[0]:
            shown[0] = percent
            post(Loading(handle.run_id, download_stage(done, total)))

    opened: list[Session] = []
    failed: list[BaseException] = []

    def opener() -> None:
        try:
            session = open_session(
                handle.overrides,
                resume=handle.resume,
                corpus_url=handle.corpus_url,
                listener=handle.buffer.put,
                threads=handle.threads,
                progress=progress,
            )
        except BaseException as exc:  # handed to the worker thread, which reports it
            failed.append(exc)
        else:
            opened.append(session)

    thread = threading.Thread(target=opener, name=f"{OPENER_NAME} {handle.run_id}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.05)
        if handle.cancelled.is_set():
            return None
    if failed:
        raise failed[0]
    return opened[0]
