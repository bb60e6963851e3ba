"""Stopping a headless run on a signal as on ctrl+c: the run ends after its batch and what it should write is written.

SIGINT (ctrl+c), SIGTERM (kill, a job scheduler's time limit) and SIGHUP (the terminal closed) all mean "stop":
the first one calls the caller's stop function (a trainer's stop(): it returns after the current batch); a
second one raises Interrupted at once, wherever the main thread is (a save in progress then removes its
temporary file and leaves the previous file whole). The conventional exit code of a process stopped by signal N
is 128 + N (130 for ctrl+c, 143 for SIGTERM, 129 for SIGHUP): exit_code() gives it.

    with StopOnSignals(trainer.stop, say=print_to_stderr) as signals:
        trainer.run()
        save(...)
    return signals.exit_code if signals.received else 0

Handlers are installed only in the main thread (Python allows no other); elsewhere the context does nothing.
A sweep uses it too, with `again`: its monitor kills its workers on a second ctrl+c, a worker just stops again.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None
)


def exit_code(signum: int) -> int:
    """The shell's code for a process ended by signal signum: 128 + signum."""
    return 128 + signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """A second stop signal: leave now. A KeyboardInterrupt, so `except Exception` never swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)


class StopOnSignals:
    """Context manager: the first stop signal calls stop(), a second raises Interrupted; handlers restored on exit.

    say: where to tell the user what happens (called with one line; failures to print are ignored, the terminal
    may be gone after SIGHUP). again: called with each later signal's number instead of raising Interrupted.
    """

    def __init__(
        self,
        stop: Callable[[], Any],
        say: Callable[[str], Any] | None = None,
        signals: tuple[int, ...] = STOP_SIGNALS,
        again: Callable[[int], Any] | None = None,
    ) -> None:
        self.stop = stop
        self.say = say
        self.signals = signals
        self.again = again
        self.received: int | None = None  # the first signal's number
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.received is not None

    @property
    def exit_code(self) -> int:
        return exit_code(self.received) if self.received is not None else 0

    def request(self, signum: int) -> None:
        """As if signum had arrived: a stop asked by a thread (a sweep worker whose monitor is gone)."""
        self._handle(signum, None)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            if self.again is None:
                raise Interrupted(signum)
            self.again(signum)
            return
        self.received = signum
        what = "ctrl+c" if signum == signal.SIGINT else signal_name(signum)
        self._tell(f"{what}: stopping after the current batch ({what} again to quit at once)")
        self.stop()

    def _tell(self, line: str) -> None:
        if self.say is None:
            return
        with contextlib.suppress(OSError, ValueError):  # stderr gone (SIGHUP) or closed
            self.say(line)

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
