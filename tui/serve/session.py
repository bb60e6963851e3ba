"""One tab's app process (SessionService): started in served mode in its own directory and process group, attached to
its tab's connection (or detached, waiting for a reload), stopped once however its connection ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import io
import os
import signal
import sys
import time
from typing import Any

from aiohttp import web
from textual_serve.app_service import AppService

from engine.data.corpus import CORPUS_ENV
from engine.errors import first_line
from tui.serve.hooks import binary_load
from tui.served import RELEASED_EXIT, ServedMode, duration, remove_tree

DOWNLOAD_WAIT = 300.0  # a session that ends waits this long at most for its downloads in flight to finish
STOP_SECONDS = 3.0  # a closed tab's app gets this long to quit by itself (it takes about one) before a kill
MAX_COLUMNS, MAX_ROWS = 300, 100  # the largest terminal a session gets: a frame stays around a megabyte at most
PR_SET_PDEATHSIG = 1


def capped(width: Any, height: Any) -> tuple[int, int]:
    """A terminal size a browser asked for, within 1…MAX_COLUMNS × 1…MAX_ROWS. ValueError/TypeError if not numbers."""
    if isinstance(width, bool) or isinstance(height, bool):
        raise TypeError("a size is a number")
    return max(1, min(MAX_COLUMNS, int(width))), max(1, min(MAX_ROWS, int(height)))


async def _drop(data: object) -> None:
    """A detached session's frames: nobody is there to see them."""


async def _nothing() -> None:
    """A detached session's connection: already gone."""


def _die_with_parent(parent: int) -> None:
    """In an app's process, between fork and exec: the kernel kills it when the server dies, however it dies."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the server died before that: nobody would tell this process
        os._exit(1)


# Loaded once in the server: a child between fork and exec must not load libraries.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class SessionService(AppService):
    """One tab's app process, run in served mode in its own directory and process group; killed if it does not quit
    in time. Its stop is shared: however many ends of a connection ask, the process is stopped once, and every
    caller returns once it is gone and its folder removed."""

    def __init__(self, command: str, mode: ServedMode, threads: int, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.mode = mode
        self.threads = threads
        self.asked_to_quit = False
        self.failure: str | None = None  # what raised while sending to the tab (a debugging aid)
        self._stderr = io.BytesIO()
        self.folder_gone = False  # its folder removed: the reaper may forget it
        self.socket: web.WebSocketResponse | None = None  # the tab's connection now; None: waiting for a reload
        self.waiting: asyncio.Task[None] | None = None  # while detached: ends the session once the grace is over
        self.downloads_in_flight = 0  # browsers reading a file from this app now
        self.delivered: set[str] = set()  # downloads whose last chunk came from the app (not a cancel, a timeout)
        self.patient = True  # its end waits for its downloads (not when the server stops)
        self.started = time.monotonic()
        self.last_input: float | None = None  # when its tab last sent a key or a click (None: never yet)
        self.peer = ""  # the address it came from
        self.watchdog: asyncio.Task[None] | None = None  # releases it if no key or click comes in time
        self.detached_at: float | None = None  # when its tab went (while it waits for a reload)
        self._stop_task: asyncio.Future[None] | None = None

    def attach(self, websocket: web.WebSocketResponse) -> None:
        """Frames go to this connection from now on (a reloaded tab's, or the first)."""
        self.socket = websocket
        self.remote_write_bytes = websocket.send_bytes
        self.remote_write_str = websocket.send_str

        async def close() -> None:
            await websocket.close()

        self.remote_close = close
        self.detached_at = None
        if self.waiting is not None:
            self.waiting.cancel()
            self.waiting = None

    def detach(self) -> None:
        """The tab went: the app runs on, its frames dropped, until a reload attaches or the grace ends."""
        self.socket = None
        self.detached_at = time.monotonic()
        self.remote_write_bytes = _drop
        self.remote_write_str = _drop
        self.remote_close = _nothing

    def running_app(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def running(self) -> bool:
        """Its app runs and nothing is ending it."""
        return self.running_app() and self._stop_task is None

    async def repaint(self, width: int, height: int) -> None:
        """A reattached tab's terminal is blank: two resizes make the app draw its whole screen again."""
        await super().set_terminal_size(*capped(width, height - 1 if height > 1 else height + 1))
        await super().set_terminal_size(*capped(width, height))

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width, height)
        environment.update(self.mode.environment())
        # Textual's WebDriver, each packet written whole: its own can interleave a download's chunk with a frame
        # (two threads, one pipe), and the session then ends with its files (tui.web_driver says how).
        environment["TEXTUAL_DRIVER"] = "tui.web_driver:ServedWebDriver"
        # torch's intra-op pool follows --threads; OpenMP's own pool must not take every core either.
        for pool in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            environment[pool] = str(self.threads)
        # The preset's own corpus (a blank field) is the server's: never a download, never a path in the form.
        environment[CORPUS_ENV] = self.mode.corpora[0]
        return environment

    async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
        # As textual-serve's, with the session's directory as working directory, in a process group of its own (the
        # kill reaches anything it started) that the kernel ends with the server.
        self._process = process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),
            cwd=self.mode.session_dir,
            start_new_session=True,
            preexec_fn=functools.partial(_die_with_parent, os.getpid()),
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def set_terminal_size(self, width: int, height: int) -> None:
        await super().set_terminal_size(*capped(width, height))

    async def on_packed(self, payload: bytes) -> None:
        """As textual-serve's, noting which downloads the app itself finished (its empty last chunk): a download
        that ends any other way was cut, and its browser must not take it for whole."""
        unpacked: Any = binary_load(payload)
        if unpacked[0] == "deliver_chunk" and not unpacked[2]:
            self.delivered.add(str(unpacked[1]))
        await super().on_packed(payload)

    async def run(self) -> None:
        """As textual-serve's, except: the app's stderr is kept for the teacher's one line (textual-serve prints it
        whole on the console), and whatever raised (a send to a tab that is gone) closes the tab's connection, so
        the session ends instead of training on for nobody."""
        process = self._process
        assert process is not None and process.stdout is not None and process.stderr is not None
        stdout, stderr = process.stdout, process.stderr

        async def read_stderr() -> None:
            while data := await stderr.read(4096):
                self._stderr.write(data)
                if self._stderr.tell() > 1 << 16:  # the end is what says why: keep the last 16 KiB
                    tail = self._stderr.getvalue()[-(1 << 14) :]
                    self._stderr = io.BytesIO()
                    self._stderr.write(tail)

        stderr_task = asyncio.create_task(read_stderr())
        try:
            for _ in range(10):  # textual's prelude, then its packets
                line = await stdout.readline()
                if not line or line == b"__GANGLION__\n":
                    break
            while True:
                kind = await stdout.readexactly(1)
                size = int.from_bytes(await stdout.readexactly(4), "big")
                payload = await stdout.readexactly(size)
                if kind == b"D":
                    await self.on_data(payload)
                elif kind == b"M":
                    await self.on_meta(payload)
                elif kind == b"P":
                    await self.on_packed(payload)
        except (asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception as exc:
            self.failure = first_line(exc) or type(exc).__name__
        finally:
            stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await stderr_task
            with contextlib.suppress(Exception):
                await self.remote_close()

    def why_it_ended(self) -> str | None:
        """Why the app ended by itself ("quit", "crashed: …"), or None when it was stopped (or still runs)."""
        process = self._process
        if self.asked_to_quit or process is None or process.returncode is None:
            return None
        code = process.returncode
        if code == 0:
            return "quit"
        if code == RELEASED_EXIT:
            minutes = duration(self.mode.release_seconds)
            return f"released: nobody typed there for {minutes} (its weights offered as a download)"
        lines = [line for line in self._stderr.getvalue().decode("utf-8", "replace").splitlines() if line.strip()]
        how = (
            f"killed by {signal.Signals(-code).name}"
            if code < 0 and -code in signal.valid_signals()
            else f"exit {code}"
        )
        return f"crashed ({how}{': ' + lines[-1].strip()[:200] if lines else ''})"

    def kill(self) -> None:
        """SIGKILL to the app's process group while the app is there (its group id is its pid)."""
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    async def stop(self) -> None:
        """Ask the app to quit; kill its group if it has not within STOP_SECONDS; remove the session's files."""
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stop_task)

    async def _stop(self) -> None:
        process = self._process
        try:
            if process is not None and self._task is not None and self.failure is None:
                # Its output may have ended by itself (it quit, gave its seat back, crashed) as its connection
                # closed: a moment for its reader to see the end, then its exit status says which (else an idle
                # release and a crash were both "the tab closed").
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(self._task), 0.5)
                if self._task.done():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(process.wait(), STOP_SECONDS)
            # Downloads in flight finish first (the browser keeps a download going after its tab closed).
            deadline = time.monotonic() + DOWNLOAD_WAIT
            while self.downloads_in_flight and self.patient and time.monotonic() < deadline and self.running_app():
                await asyncio.sleep(0.2)
            if process is not None and process.returncode is None:
                self.asked_to_quit = True
            # Whatever raised on the way (a send to a tab that is gone) must not keep the seat or the process.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(super().stop(), STOP_SECONDS)
        finally:
            self.kill()
            if process is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(process.wait(), STOP_SECONDS)
            # After the process is gone (nothing writes into the folder any more); any depth; never raises.
            self.folder_gone = await asyncio.to_thread(remove_tree, str(self.mode.session_dir))
