"""`rnn-tui serve`: the app in web browsers, one app process per tab (textual-serve), for a classroom.

What textual-serve does as it is, and what this module changes (textual_serve 1.1.3, read before designing):
- its page asks fonts.googleapis.com for Roboto Mono: our template (tui/templates/app_index.html) declares the
  font from textual-serve's own bundled copy instead, so the page requests nothing beyond this server;
- it starts a process for every websocket, without limit: at most --max-sessions here; a further tab gets a
  page (or, if it got that far, a line in its terminal) saying the classroom is full;
- it waits forever for an app that ignores "quit": a session's process is killed STOP_SECONDS after its tab
  closed, and its directory removed; an app process that dies closes its tab's connection (the page said
  nothing and the session stayed counted);
- its page's URLs come from the host it binds (0.0.0.0 would be sent to the browser): here, from the address
  the browser used, or --public-url.
- a send that fails (a tab that dropped a frame too large for it) raised out of its stop and the seat was
  never freed, its app training on with nobody there: every way a connection ends now frees the seat, kills
  the app's process group and removes its folder, whatever raised on the way;
- the terminal size a browser asks for is capped (MAX_COLUMNS × MAX_ROWS): an 8000×4000 terminal made frames
  of many megabytes and a session of a gigabyte; the browser's messages are capped too (MAX_MESSAGE);
- app processes could outlive the server (ctrl+c, a crash, SIGKILL): each is its own process group, killed
  with the session; the kernel kills it if the server dies (PR_SET_PDEATHSIG); and a small reaper process,
  holding a pipe from the server, kills what is left and removes the folders once that pipe closes;
- any page could open a session (no Origin check, no login): the websocket's Origin must be this server's
  page, and serving beyond this machine needs a join code;
- tracebacks with local variables on the teacher's console: one line per event instead (--log: JSON lines);
- its apps' driver (Textual's WebDriver) writes a download's chunks (its input thread) and the screen's frames (the
  app's thread) into one pipe without a lock: under load they interleaved, the packet could not be decoded, and the
  session ended with its files while the tab was still open: sessions run tui.web_driver's, each packet whole.
Each app process runs in served mode (tui.served): its own directory under --workdir as working directory,
file dialogs confined to it, the corpus fixed, training paused when nobody has touched the tab for a while.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import errno
import fcntl
import functools
import hmac
import inspect
import io
import json
import logging
import math
import os
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from engine.corpus import CORPUS_ENV, find_corpus, missing_corpus_message
from engine.errors import RnnTuiError, first_line
from engine.limits import available_memory
from tui.cli import fail, train_argv
from tui.serve_hooks import binary_load, check_hooks
from tui.served import REAPER_FUNCTIONS, RELEASED_EXIT, ServedMode, duration, reaper_prelude, remove_tree

log = logging.getLogger("rnn-tui serve")

TEMPLATES = Path(__file__).parent / "templates"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
DOWNLOAD_WAIT = 300.0  # a session that ends waits this long at most for its downloads in flight to finish
STOP_SECONDS = 3.0  # a closed tab's app gets this long to quit by itself (it takes about one) before a kill
MAX_COLUMNS, MAX_ROWS = 300, 100  # the largest terminal a session gets: a frame stays around a megabyte at most
MAX_MESSAGE = 1 << 20  # bytes in one message from a browser (keys, a paste, a resize): more ends the session
TAB_PATTERN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # a join code to read off a board: no 0/o, 1/l/i
CODE_COOKIE = "rnn-tui-code"
TOKEN_MIN = 8  # --token: 4 digits fell to guessing in about 6 s; 8 of 64 characters, with the throttle, do not
TOKEN_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
MIB = 2**20
SERVER_RESERVE = 1 << 30  # memory left to the server, the system and the teacher when seats are shared out
AUTO_SEAT_MEMORY = 1 << 30  # --max-sessions auto: a seat per GiB (a session at the defaults: see the README)
MIN_SEAT_MEMORY = 512 * MIB  # torch and the app alone take about 400 MiB
PR_SET_PDEATHSIG = 1
# The reaper: started with the server, reads lines from it ("group N", "dir PATH", "done N", "undir PATH", "own
# PATH") and, once the server has gone however it went (its end of the pipe closes), kills the process groups still
# listed and removes the folders. Standard library only (tui.served's remove_tree, then this loop): it starts in a blink
# and cannot fail to import. The server says "undir" only once a folder is gone.
REAPER_LOOP = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups, folders = set(), set()
for line in sys.stdin:
    verb, _, arg = line.rstrip("\\n").partition(" ")
    if verb == "group": groups.add(int(arg))
    elif verb == "done": groups.discard(int(arg))
    elif verb in ("dir", "own"): folders.add(arg)
    elif verb == "undir": folders.discard(arg)
for group in groups:
    try: os.killpg(group, signal.SIGKILL)
    except OSError: pass
for folder in folders:
    remove_tree(folder)
"""
REAPER = reaper_prelude() + "\n".join(inspect.getsource(f) for f in REAPER_FUNCTIONS) + REAPER_LOOP
SESSION_PREFIX = "session-"  # a session's folder in the workdir: session-NUMBER-RANDOM
FULL_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="30"><title>rnn-tui: the classroom is full</title>
<style>body{{background:#0c181f;color:#eee;font-family:monospace;display:flex;height:90vh;align-items:center;
justify-content:center}}div{{max-width:36em;line-height:1.5}}a{{color:#ac5af4}}</style></head>
<body><div><h2>The classroom is full</h2>
<p>All {limit} sessions of this rnn-tui server are in use. A place frees up when someone closes their tab{when}.</p>
<p>This page tries again by itself every 30 seconds. <a href="">Try now</a></p></div>
<script>/* a reload of a tab that has a session here takes that session's place: say which tab this is */
const tab = sessionStorage.getItem("rnn-tui-tab");
if (tab && !new URLSearchParams(location.search).has("tab")) {{
  const url = new URL(location.href); url.searchParams.set("tab", tab); location.replace(url.href);
}}</script></body></html>
"""
CODE_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>rnn-tui: join code</title>
<style>body{{background:#0c181f;color:#eee;font-family:monospace;display:flex;height:90vh;align-items:center;
justify-content:center}}input,button{{font:inherit;padding:6px}}</style></head>
<body><form method="get" action=""><h2>rnn-tui</h2><p>{why}</p>
<input name="code" autofocus autocomplete="off"> <button>Join</button></form></body></html>
"""


@dataclass
class ServeSettings:
    """What the teacher chose on the command line, resolved once at start."""

    host: str
    port: int
    public_url: str | None
    max_sessions: int
    workdir: Path
    own_workdir: bool  # created by us: removed at exit
    idle_seconds: float
    threads: int
    corpora: tuple[str, ...]
    app_flags: list[str] = field(default_factory=list)
    code: str | None = None  # the join code a page or websocket must bring; None: none asked (this machine only)
    log_file: Path | None = None
    seat_memory: int = 0  # bytes one session's process may use (its models are checked against what is left)
    seat_disk: int = 0  # bytes one session's files may take
    release_seconds: float = 0.0  # without input this long, a session saves, offers the download, and leaves
    reload_seconds: float = 0.0  # a tab's app waits this long after its tab goes, for the tab's reload
    first_key_seconds: float = 0.0  # a tab that sends no key or click this long after opening loses its seat
    seats_per_address: int = 0  # sessions one address may hold at once; 0: no limit
    lesson: str | None = None  # --lesson: every session runs it
    observations: str | None = None  # where the sessions append their lesson's observations (a CSV)
    unix_socket: str | None = None  # --unix-socket: listen there instead of host:port (behind jupyter-server-proxy)

    @property
    def base_path(self) -> str:
        """The path the browser reaches this server under ("" at the site's root; "/user/ada/rnn-tui" behind a hub
        that strips it before it forwards)."""
        url = self.public_url or ""
        return url if url.startswith("/") else urlsplit(url).path.rstrip("/")

    @property
    def path_only(self) -> bool:
        """--public-url is a path alone: the proxy keeps the browser's own host (JupyterHub), unknown here."""
        return bool(self.public_url) and str(self.public_url).startswith("/")

    def app_command(self) -> str:
        """The shell command that starts one app process (exec: the shell's pid is the app's, for the kill)."""
        return "exec " + shlex.join([sys.executable, "-m", "tui.main", *self.app_flags])


def join_code(token: str | None, host: str) -> str | None:
    """--token if given (checked), else a fresh code when the server can be reached from beyond this machine."""
    if token is not None:
        if len(token) < TOKEN_MIN or not set(token) <= TOKEN_ALPHABET:
            raise RnnTuiError(
                f"--token must be at least {TOKEN_MIN} characters, each a letter (a-z, A-Z), a digit or - _ "
                f"(got {len(token)} characters)"
            )
        return token
    if host in LOCAL_HOSTS:
        return None
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


def train_flags(args: argparse.Namespace) -> list[str]:
    """The `train` flags set in args, as command-line words, so every session gets exactly the teacher's."""
    # The corpus goes by $RNN_TUI_CORPUS: the form's field stays blank, not the server's path.
    return train_argv(argparse.Namespace(**{**vars(args), "corpus": None}))


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """Resolve the command line: the corpus and checkpoint become absolute (sessions run in their own
    directories), the torch threads are shared out, the work directory exists. RnnTuiError on a bad value."""
    corpus = find_corpus(args.corpus)
    if corpus is None:
        raise RnnTuiError(missing_corpus_message() + " (serve downloads nothing for its sessions)")
    args.corpus = str(corpus.resolve())
    if args.resume is not None:
        resume = Path(args.resume).expanduser()
        if not resume.is_file():
            raise RnnTuiError(f"checkpoint not found: {args.resume}")
        args.resume = str(resume.resolve())
    if getattr(args, "lesson", None):
        # Every seat runs the lesson and appends its observation to one CSV the teacher keeps (outside the sessions'
        # directories, which go with their tabs): --observations, else observations-LESSON.csv here.
        observations = Path(args.observations or f"observations-{args.lesson}.csv").expanduser()
        args.observations = str(observations.resolve())
    cores = os.cpu_count() or 1
    free_memory = available_memory() or 0  # 0, unreadable: auto_sessions counts by cores alone
    max_sessions = args.max_sessions
    if max_sessions in (None, "auto"):
        max_sessions = auto_sessions(cores, free_memory)
    if args.threads is None:  # sessions share the cores rather than each taking all of them
        args.threads = max(1, cores // max_sessions)
    own_workdir = args.workdir is None
    if own_workdir:
        workdir = Path(tempfile.mkdtemp(prefix="rnn-tui-serve-"))
    else:
        workdir = Path(args.workdir).expanduser()
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RnnTuiError(f"cannot use --workdir {args.workdir}: {exc.strerror or exc}") from exc
    seat_memory = args.seat_memory * MIB if getattr(args, "seat_memory", None) else None
    if seat_memory is None:
        seat_memory = max(MIN_SEAT_MEMORY, (free_memory - SERVER_RESERVE) // max_sessions)
    unix_socket = getattr(args, "unix_socket", None)
    public_url = args.public_url.rstrip("/") if args.public_url else None
    if public_url is not None and public_url.startswith("/") and unix_socket is None:
        # The hub's login stands before a socket only the proxy can reach: on a TCP port, any user of this machine
        # (or a page whose name was made to point here) would open sessions past it, and the host is not known.
        raise RnnTuiError(
            "--public-url as a path alone (behind JupyterHub's proxy) needs --unix-socket: on a TCP port anyone on "
            "this machine could open sessions past the hub's login"
        )
    seat_disk = args.seat_disk * MIB if getattr(args, "seat_disk", None) else None
    if seat_disk is None:
        seat_disk = max(16 * MIB, min(1024 * MIB, shutil.disk_usage(workdir).free // (2 * max_sessions)))
    return ServeSettings(
        host=args.host,
        port=args.port,
        public_url=public_url or None,
        max_sessions=max_sessions,
        workdir=workdir.resolve(),
        own_workdir=own_workdir,
        idle_seconds=args.idle_minutes * 60,
        threads=args.threads,
        corpora=(args.corpus,),
        app_flags=train_flags(args),
        code=join_code(getattr(args, "token", None), args.host),
        log_file=Path(args.log).expanduser() if getattr(args, "log", None) else None,
        seat_memory=seat_memory,
        seat_disk=seat_disk,
        release_seconds=getattr(args, "release_minutes", 0.0) * 60,
        reload_seconds=getattr(args, "reload_seconds", 0.0),
        first_key_seconds=getattr(args, "first_key_minutes", 0.0) * 60,
        seats_per_address=getattr(args, "seats_per_address", 0) or 0,
        lesson=getattr(args, "lesson", None),
        observations=getattr(args, "observations", None),
        unix_socket=str(Path(unix_socket).expanduser().absolute()) if unix_socket else None,
    )


def auto_sessions(cores: int, free_memory: int) -> int:
    """--max-sessions auto: one per CPU core and per AUTO_SEAT_MEMORY of the memory available beyond the server's
    reserve, whichever is fewer (at least one)."""
    by_memory = (free_memory - SERVER_RESERVE) // AUTO_SEAT_MEMORY if free_memory else cores
    return max(1, min(cores, by_memory))


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


def clean(text: str, limit: int = 300) -> str:
    """Text a visitor sent (a header, a name), safe on the console and in the JSON log: control characters and
    undecodable bytes (an Origin with byte 0x9b broke --log with a traceback per request) as escapes, and short."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return text if len(text) <= limit else text[:limit] + "…"


class Throttle:
    """Refusals counted per address: after FREE_REFUSALS, the address is turned away unheard (429, no console line)
    for a backoff that doubles with each further refusal, up to MAX_BACKOFF: guessing a join code or flooding the
    console with refused upgrades (1,300 a second) becomes a few tries a minute. Others are not affected."""

    FREE_REFUSALS = 10  # a class behind one address (NAT) may mistype the code a few times
    FIRST_BACKOFF = 2.0
    MAX_BACKOFF = 300.0
    FORGET_AFTER = 600.0  # an address quiet this long past its backoff starts afresh
    MAX_ADDRESSES = 10_000  # the oldest are forgotten past this

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self.refusals: dict[str, tuple[int, float]] = {}  # address → (refusals, turned away until)

    def wait(self, address: str) -> float:
        """Seconds this address is still turned away for (0: it may try)."""
        refusals = self.refusals.get(address)
        return max(0.0, refusals[1] - self.clock()) if refusals else 0.0

    def refused(self, address: str) -> tuple[int, float]:
        """Count a refusal: (refusals so far, the backoff it starts now, 0 while still free)."""
        count, until = self.refusals.pop(address, (0, 0.0))
        if self.clock() - until > self.FORGET_AFTER:
            count = 0
        count += 1
        backoff = 0.0
        if count > self.FREE_REFUSALS:
            backoff = min(self.MAX_BACKOFF, self.FIRST_BACKOFF * 2 ** (count - self.FREE_REFUSALS - 1))
        self.refusals[address] = (count, self.clock() + backoff)
        while len(self.refusals) > self.MAX_ADDRESSES:
            del self.refusals[next(iter(self.refusals))]
        return count, backoff


class EventHandler(logging.Handler):
    """The teacher's console: one line per record, never a traceback (an exception adds its first line); with
    --log, each record also as a JSON line ({"time", "event", "message", …the event's fields})."""

    def __init__(self, log_file: Path | None) -> None:
        super().__init__(logging.INFO)
        self.file: IO[str] | None = None
        if log_file is not None:
            self.file = open(log_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (open for the server's life)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = clean(record.getMessage().splitlines()[0], 1000) if record.getMessage() else ""
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                message += f": {type(exc).__name__}: {clean(first_line(exc))}"
            print(f"rnn-tui serve: {message}", file=sys.stderr, flush=True)
            if self.file is not None:
                entry = {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "event": getattr(record, "event", "error" if record.levelno >= logging.ERROR else "note"),
                    "message": message,
                    **getattr(record, "fields", {}),
                }
                self.file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        except Exception as exc:  # a full disk for the log must not stop the classroom, nor print a traceback
            with contextlib.suppress(Exception):
                print(f"rnn-tui serve: could not log an event: {type(exc).__name__}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        super().close()


class ClassroomServer(Server):
    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(
            settings.app_command(),
            host=settings.host,
            port=settings.port,
            title="rnn-tui",
            public_url=settings.public_url,
            templates_path=TEMPLATES,
        )
        self.settings = settings
        self.sessions: dict[int, SessionService] = {}
        self.tabs: dict[str, int] = {}  # a browser tab's id (sessionStorage) → its session
        self._next_session = 0
        self._stopping = False  # the server is stopping: a tab that goes no longer waits for its reload
        self.throttle = Throttle()
        self.reaper: subprocess.Popen[str] | None = None
        self.workdir_lock: int | None = None  # the work directory's open descriptor, locked (claim_workdir)

    # ----- the teacher's console, the reaper -----

    def initialize_logging(self) -> None:
        # One plain line per event for the teacher; textual-serve's handler prints tracebacks with locals, and
        # aiohttp's "Error handling request" would print one too.
        root = logging.getLogger()
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(EventHandler(self.settings.log_file))
        root.setLevel(logging.WARNING)
        log.setLevel(logging.INFO)

    def event(self, kind: str, message: str, **fields: object) -> None:
        fields = {name: clean(value) if isinstance(value, str) else value for name, value in fields.items()}
        log.info(clean(message, 1000), extra={"event": kind, "fields": fields})

    def refuse(self, peer: str, message: str, **fields: object) -> None:
        """A refusal's console line, while the address has refusals to spare; then one line when it is turned away."""
        count, backoff = self.throttle.refused(peer)
        if count <= Throttle.FREE_REFUSALS:
            self.event("refused", message, peer=peer, **fields)
        else:
            self.event(
                "throttled",
                f"turning {peer} away for {backoff:g} s after {count} refusals (latest: {message})",
                peer=peer,
                refusals=count,
                seconds=backoff,
            )

    def turned_away(self, request: web.Request) -> web.Response | None:
        """429 for an address still in its backoff (no console line: that is the point)."""
        wait = self.throttle.wait(request.remote or "?")
        if not wait:
            return None
        return web.Response(
            status=429,
            headers={"Retry-After": str(math.ceil(wait))},
            text=f"rnn-tui: too many refused tries from this address: wait {math.ceil(wait)} s\n",
        )

    def start_reaper(self) -> None:
        self.reaper = subprocess.Popen(
            [sys.executable, "-c", REAPER], stdin=subprocess.PIPE, text=True, start_new_session=True
        )
        if self.settings.own_workdir:
            self.tell("own", str(self.settings.workdir))

    def tell(self, verb: str, argument: object) -> None:
        """A line to the reaper (what to clean if this server dies)."""
        if self.reaper is not None and self.reaper.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.reaper.stdin.write(f"{verb} {argument}\n")
                self.reaper.stdin.flush()

    def close_reaper(self) -> None:
        """The server ends: the reaper cleans whatever is left (normally nothing) and exits."""
        if self.reaper is not None:
            with contextlib.suppress(OSError, ValueError):
                assert self.reaper.stdin is not None
                self.reaper.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.reaper.wait(timeout=10)

    # ----- who may open a session -----

    def _base_url(self, request: web.Request) -> str:
        """Where the browser reaches us: --public-url, else the address it used (never 0.0.0.0); a --public-url that
        is a path alone (JupyterHub) follows the address the browser used."""
        public = self.settings.public_url
        if public is None or self.settings.path_only:
            return f"{request.scheme}://{request.host}{public or ''}"
        return public

    def _own_address(self, request: web.Request) -> bool:
        """Served on this machine only, a request must name this machine: a page elsewhere whose name was made to
        point here (DNS rebinding) would otherwise pass the Origin check as its own."""
        if self.settings.public_url or self.settings.unix_socket or self.settings.host not in LOCAL_HOSTS:
            return True
        return urlsplit("//" + request.host).hostname in ("127.0.0.1", "localhost", "::1")

    def _own_origin(self, request: web.Request) -> bool:
        """The websocket comes from this server's own page (a browser always says which page opened it)."""
        origin = request.headers.get("Origin", "").rstrip("/").lower()
        base = urlsplit(self._base_url(request))
        if self.settings.path_only:  # behind the hub: its page's host, over http or https (the hub's TLS ends first)
            return origin in (f"http://{base.netloc}".lower(), f"https://{base.netloc}".lower())
        return origin == f"{base.scheme}://{base.netloc}".lower()

    def _wrong_code(self, request: web.Request) -> str | None:
        """None when the request brings the join code (or none is asked); else what it brought ("" for nothing)."""
        code = self.settings.code
        if code is None:
            return None
        given = request.query.get("code") or request.cookies.get(CODE_COOKIE) or ""
        return None if hmac.compare_digest(given.encode(), code.encode()) else given

    def _tab(self, request: web.Request) -> str:
        tab = request.match_info.get("tab") or request.query.get("tab") or ""
        return tab if 8 <= len(tab) <= 64 and set(tab) <= TAB_PATTERN else ""

    # ----- pages -----

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.router.add_get("/ws/{tab}", self.handle_websocket, name="tab-websocket")
        return app

    async def handle_index(self, request: web.Request) -> web.Response:
        peer = request.remote or "?"
        if (turned_away := self.turned_away(request)) is not None:
            return turned_away
        if not self._own_address(request):
            self.refuse(peer, f"refused a page from {peer}: asked for as {request.host!r}")
            return web.Response(status=403, text="rnn-tui: open this server by its own address\n")
        wrong = self._wrong_code(request)
        if wrong is not None:
            why = "That code is not this classroom's: try again." if wrong else "Type the join code your teacher gave."
            if wrong:
                self.refuse(peer, f"refused a page from {peer}: wrong join code")
            return web.Response(status=403, text=CODE_PAGE.format(why=why), content_type="text/html")
        if len(self.sessions) >= self.settings.max_sessions and self._tab(request) not in self.tabs:
            self.event("full", f"full: turned a page away from {peer}", peer=peer)
            page = FULL_PAGE.format(limit=self.settings.max_sessions, when=self._next_place())
            return web.Response(status=503, text=page, content_type="text/html")
        base = self._base_url(request)
        router = request.app.router
        websocket_url = base + str(router["websocket"].url_for())
        websocket_url = ("wss:" if base.startswith("https") else "ws:") + websocket_url.split(":", 1)[1]
        static_url = base + str(router["static"].url_for(filename="/")).rstrip("/") + "/"
        if self.settings.path_only:  # paths alone: the page makes them its own address (http or https, the hub's)
            websocket_url, static_url = (urlsplit(url).path for url in (websocket_url, static_url))
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": websocket_url,
            "static_url": static_url,
            "base_path": self.settings.base_path,  # the page sends downloads (/download/…) under it
        }
        response = aiohttp_jinja2.render_template("app_index.html", request, context)
        if self.settings.code is not None:  # the page's websocket brings it back (same site only)
            response.set_cookie(CODE_COOKIE, self.settings.code, httponly=True, samesite="Strict", path="/")
        return response

    # A refusal answers plain HTTP (403) before any websocket: a StreamResponse, wider than textual-serve's type.
    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:  # type: ignore[override]
        peer = request.remote or "?"
        if (turned_away := self.turned_away(request)) is not None:
            return turned_away
        if not self._own_address(request) or not self._own_origin(request):
            origin = request.headers.get("Origin", "none")
            why = f"not from this server's page (Origin {origin})"
            self.refuse(peer, f"refused a connection from {peer}: {why}", origin=origin)
            return web.Response(status=403, text="rnn-tui: sessions open from this server's own page only\n")
        if self._wrong_code(request) is not None:
            self.refuse(peer, f"refused a connection from {peer}: wrong or missing join code")
            return web.Response(status=403, text="rnn-tui: this classroom needs its join code\n")
        tab = self._tab(request)
        kept = self.sessions.get(self.tabs[tab]) if tab in self.tabs else None
        if kept is not None and not kept.running():  # its app has ended: the reload gets a fresh one
            await self._release(self.tabs[tab], "the tab reloaded")
            kept = None
        websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=MAX_MESSAGE)
        await websocket.prepare(request)
        if kept is not None:  # a reload: the tab's app, as it was
            return await self._reattach(self.tabs[tab], kept, websocket, request)
        if len(self.sessions) >= self.settings.max_sessions:  # opened before the others took the places
            limit = self.settings.max_sessions
            self.event("full", f"full: turned a connection away from {peer}", peer=peer)
            await websocket.send_bytes(f"\r\nThe classroom is full: all {limit} sessions are in use.\r\n".encode())
            await websocket.close()
            return websocket
        per_address = self.settings.seats_per_address
        if per_address and sum(s.peer == peer for s in self.sessions.values()) >= per_address:
            why = f"it has {per_address} session(s) already"
            self.event("refused", f"refused a connection from {peer}: {why}", peer=peer)
            await websocket.send_bytes(
                f"\r\nThis address has {per_address} session(s) here already: close one to open another.\r\n".encode()
            )
            await websocket.close()
            return websocket
        self._next_session += 1
        number = self._next_session
        session_dir = Path(tempfile.mkdtemp(prefix=f"{SESSION_PREFIX}{number}-", dir=self.settings.workdir)).resolve()
        self.tell("dir", session_dir)
        mode = ServedMode(
            session_dir,
            self.settings.corpora,
            self.settings.idle_seconds,
            seat_memory=self.settings.seat_memory,
            disk_quota=self.settings.seat_disk,
            release_seconds=self.settings.release_seconds,
        )
        session = SessionService(
            self.command,
            mode,
            self.settings.threads,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
        )
        session.attach(websocket)
        session.peer = peer
        self.sessions[number] = session  # no await since the check above: the limit holds
        if tab:
            self.tabs[tab] = number

        async def begin(width: int, height: int) -> None:
            await session.start(width, height)
            self.tell("group", session.pid)
            if self.settings.first_key_seconds:
                session.watchdog = asyncio.ensure_future(self._first_key(number, session))
            self.event(
                "joined",
                f"session {number} joined from {peer} (pid {session.pid}; {len(self.sessions)} of "
                f"{self.settings.max_sessions} in use)",
                session=number,
                pid=session.pid,
                peer=peer,
            )

        return await self._converse(number, session, websocket, request, begin)

    async def _reattach(
        self, number: int, session: SessionService, websocket: web.WebSocketResponse, request: web.Request
    ) -> web.WebSocketResponse:
        """A reloaded tab takes its app back, training and files as they were; its old connection, if still open,
        is closed without ending anything."""
        peer = request.remote or "?"
        old = session.socket
        session.attach(websocket)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        self.event("reloaded", f"session {number} reloaded from {peer}: its app and files as they were", session=number)
        return await self._converse(number, session, websocket, request, session.repaint)

    async def _converse(
        self,
        number: int,
        session: SessionService,
        websocket: web.WebSocketResponse,
        request: web.Request,
        begin: Callable[[int, int], Awaitable[None]],
    ) -> web.WebSocketResponse:
        """A tab's connection: begin at the tab's size (a new app started, or a reloaded one repainted), then its
        messages until it ends; however it ends, the session is told why and the socket closed."""
        reason = "the tab closed"
        try:
            width, height = capped(
                to_int(request.query.get("width", "80"), 80), to_int(request.query.get("height", "24"), 24)
            )
            await begin(width, height)
            reason = await self._process_messages(websocket, session)
        except asyncio.CancelledError:
            reason = "the server stopped"
        except Exception as exc:  # anything else a browser can cause ends that session, not the server
            reason = f"error: {first_line(exc) or type(exc).__name__}"
        finally:
            await asyncio.shield(self._connection_ended(number, session, websocket, reason))
            with contextlib.suppress(Exception):
                await websocket.close()
        return websocket

    async def _connection_ended(
        self, number: int, session: SessionService, websocket: web.WebSocketResponse, reason: str
    ) -> None:
        """A tab's connection ended. Taken over by a reload: nothing more. A tab (with its id) that closed or lost
        its connection: its app waits --reload-seconds for the reload. Otherwise the session ends."""
        if session.socket is not websocket:
            return
        grace = self.settings.reload_seconds
        quiet = reason == "the tab closed" or reason.endswith("(code 1006)")
        has_tab = any(owner == number for owner in self.tabs.values())
        if has_tab and quiet and grace > 0 and session.running() and not self._stopping:
            session.detach()
            session.waiting = asyncio.ensure_future(self._wait_for_reload(number, session))
            waits = f"session {number}: its tab went; its app waits {grace:g} s for a reload"
            self.event("waiting", waits, session=number)
            return
        await self._release(number, reason)

    async def _wait_for_reload(self, number: int, session: SessionService) -> None:
        """The grace after a tab went: the session ends when it is over (or when the app ends meanwhile), unless a
        reload attached (which cancels this)."""
        grace = self.settings.reload_seconds
        with contextlib.suppress(asyncio.CancelledError):
            if session._task is not None:
                await asyncio.wait([session._task], timeout=grace)
            else:
                await asyncio.sleep(grace)
            if session.socket is None:
                session.waiting = None
                await self._release(number, f"its tab went and did not come back within {grace:g} s")

    # Returns why the connection ended (textual-serve's returns nothing), for the teacher's line.
    async def _process_messages(  # type: ignore[override]
        self, websocket: web.WebSocketResponse, session: SessionService
    ) -> str:
        """textual-serve's, with every message checked: one that is not what the page sends ends the session.
        Returns why the connection ended."""
        async for message in websocket:
            if message.type == WSMsgType.ERROR:  # a message over MAX_MESSAGE, a broken frame
                return f"protocol error ({first_line(websocket.exception() or message.data) or 'a bad frame'})"
            if message.type != WSMsgType.TEXT:
                continue
            try:
                envelope = json.loads(message.data)
                kind = envelope[0]
                data: Any = envelope[1] if len(envelope) > 1 else None
                if kind in ("stdin", "focus"):  # a person: a key, or a click on the terminal
                    session.last_input = time.monotonic()
                if kind == "stdin":
                    await session.send_bytes(data.encode("utf-8"))
                elif kind == "resize":
                    await session.set_terminal_size(*capped(data["width"], data["height"]))
                elif kind == "ping":
                    await websocket.send_json(["pong", data])
                elif kind == "blur":
                    await session.blur()
                elif kind == "focus":
                    await session.focus()
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                return "protocol error (a malformed message)"
        code = websocket.close_code
        if code in (None, 1000, 1001):  # closed, or gone away (a closed tab, a reload)
            return "the tab closed"
        return f"the tab dropped the connection (code {code})"  # 1009: a frame too large for it

    async def handle_download(self, request: web.Request) -> web.StreamResponse:
        """As textual-serve's, except that a download cut short (its session ended, its app died) is never reported
        complete: the connection is dropped without the end of its chunked body, so the browser says it failed. A
        session that ends waits for its downloads in flight (SessionService._stop)."""
        key = request.match_info["key"]
        try:
            meta = await self.download_manager.get_download_metadata(key)
        except KeyError:
            raise web.HTTPNotFound(text="rnn-tui: no such download (its session may have ended)\n") from None
        session = meta.app_service
        assert isinstance(session, SessionService)
        number = next((n for n, s in self.sessions.items() if s is session), 0)
        response = web.StreamResponse()
        content_type = meta.mime_type + (f"; charset={meta.encoding}" if meta.encoding else "")
        response.headers["Content-Type"] = content_type
        disposition = "inline" if meta.open_method == "browser" else "attachment"
        response.headers["Content-Disposition"] = f"{disposition}; filename={meta.file_name}"
        session.downloads_in_flight += 1
        sent = 0
        try:
            await response.prepare(request)
            async for chunk in self.download_manager.download(key):
                await response.write(chunk)
                sent += len(chunk)
        finally:
            session.downloads_in_flight -= 1
        if key in session.delivered:
            await response.write_eof()
            self.event("download", f"session {number}: {meta.file_name} downloaded ({sent:,} bytes)", session=number)
            return response
        self.event(
            "download cut",
            f"session {number}: the download of {meta.file_name} was cut after {sent:,} bytes (its app ended)",
            session=number,
        )
        if request.transport is not None:
            request.transport.abort()  # no last chunk: the browser reports the download failed
        return response

    async def _first_key(self, number: int, session: SessionService) -> None:
        """A seat goes to a person: a tab that sends no key and no click within --first-key-minutes is released
        (a script holding sockets open kept every seat until the idle release, an hour)."""
        limit = self.settings.first_key_seconds
        await asyncio.sleep(limit)
        if session.last_input is None and self.sessions.get(number) is session:
            await self._release(number, f"released: no key or click within {duration(limit)} of opening")

    def _next_place(self) -> str:
        """When the next place frees up at the latest, as the end of a sentence ("" when no limit says)."""
        now = time.monotonic()
        deadlines = []
        for session in self.sessions.values():
            if session.detached_at is not None:
                deadlines.append(session.detached_at + self.settings.reload_seconds)
            elif session.last_input is None and self.settings.first_key_seconds:
                deadlines.append(session.started + self.settings.first_key_seconds)
            elif self.settings.release_seconds:
                deadlines.append((session.last_input or session.started) + self.settings.release_seconds)
        if len(deadlines) < len(self.sessions) or not deadlines:
            return ""
        soonest = duration(max(1.0, min(deadlines) - now))
        return f", or at the latest in about {soonest} (a seat nobody types in goes back)"

    async def _release(self, number: int, reason: str) -> None:
        """End session `number` (once, however many ends of its connection ask): its process group killed, its
        folder removed, its seat freed, one line for the teacher."""
        session = self.sessions.get(number)
        if session is None:
            return
        if session.waiting is not None:  # ending by another way while it waited for a reload
            session.waiting.cancel()
            session.waiting = None
        if session.watchdog is not None and session.watchdog is not asyncio.current_task():
            session.watchdog.cancel()
        try:
            await session.stop()
        finally:
            if self.sessions.pop(number, None) is not None:
                for tab in [tab for tab, owner in self.tabs.items() if owner == number]:
                    del self.tabs[tab]
                self.tell("done", session.pid)
                if session.folder_gone:  # else the reaper removes it when the server ends
                    self.tell("undir", session.mode.session_dir)
                ended = session.why_it_ended()
                ordinary = reason == "the tab closed" or reason.endswith(("(code 1001)", "(code 1006)"))
                if ended is None and session.failure is not None and not ordinary:  # not a closing tab's noise
                    reason = f"{reason} (after an error in its output: {session.failure})"
                said = ended or reason
                kind = next((k for k in ("crashed", "released") if said.startswith(k)), "left")
                self.event(
                    kind,
                    f"session {number} {kind}: {ended or reason} ({len(self.sessions)} of "
                    f"{self.settings.max_sessions} in use)",
                    session=number,
                    reason=ended or reason,
                )

    async def on_startup(self, app: web.Application) -> None:
        s = self.settings
        if s.unix_socket is not None:
            url = f"{s.public_url or ''}/ through the proxy in front of {s.unix_socket}"
        elif s.public_url:
            url = s.public_url
        elif s.host in ("0.0.0.0", "::"):  # every address of this machine: name one the students can use
            url = f"http://{socket.gethostname()}:{s.port} (or this machine's address)"
        else:
            url = f"http://{s.host}:{s.port}"
        print(f"rnn-tui serve: open {url} in a browser (Ctrl+C stops the server)", flush=True)
        if s.code is not None:
            print(
                f"  join code: {s.code} (students type it on the page, or open the address with ?code={s.code})",
                flush=True,
            )
        seat = (
            f"{s.threads} torch thread(s), {s.seat_memory // MIB:,} MiB of memory, {s.seat_disk // MIB:,} MiB of files"
        )
        print(f"  at most {s.max_sessions} sessions; each: {seat}", flush=True)
        if s.idle_seconds:
            print(f"  training pauses after {duration(s.idle_seconds)} without input", flush=True)
        if s.release_seconds:
            print(f"  a seat goes back to the class after {duration(s.release_seconds)} without input", flush=True)
        if s.first_key_seconds:
            first_key = duration(s.first_key_seconds)
            print(f"  a tab with no key or click within {first_key} gives its seat back", flush=True)
        if s.reload_seconds:
            print(f"  a tab that goes: its app waits {duration(s.reload_seconds)} for a reload", flush=True)
        if s.seats_per_address:
            print(f"  at most {s.seats_per_address} session(s) from one address", flush=True)
        print(f"  each session's files: a fresh directory in {s.workdir}, removed when its tab closes", flush=True)
        if s.lesson:
            print(f"  lesson {s.lesson} for every session; their observations collect in {s.observations}", flush=True)
            if s.observations:  # a seat may pick another lesson in the app (F11 → Lessons): its row is kept apart
                from tui.lesson_report import lesson_file

                other = lesson_file(s.observations, "LESSON").name
                print(f"  (a seat that picks another lesson in the app: its rows go to {other} beside it)", flush=True)
        where = s.unix_socket or f"{s.host}:{s.port}"
        self.event("started", f"listening on {where}", host=s.host, port=s.port, max_sessions=s.max_sessions)

    def serve(self, debug: bool = False) -> None:
        """textual-serve's, on --unix-socket when given (its own listens on host:port only)."""
        if self.settings.unix_socket is None:
            super().serve(debug)
            return
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.add_signal_handler(signal.SIGINT, self.request_exit)
        loop.add_signal_handler(signal.SIGTERM, self.request_exit)
        web.run_app(self._make_app(), path=self.settings.unix_socket, handle_signals=False, loop=loop, print=None)

    async def on_shutdown(self, app: web.Application) -> None:
        self._stopping = True
        for session in self.sessions.values():
            session.patient = False
        await asyncio.gather(*(self._release(number, "the server stopped") for number in list(self.sessions)))
        if self.settings.own_workdir:
            remove_tree(str(self.settings.workdir))


def host_warning(host: str) -> str | None:
    if host in LOCAL_HOSTS:
        return None
    return (
        f"rnn-tui serve: warning: listening on {host}: anyone who can reach this port can run training on this "
        "machine (and use its CPU); use a firewall or a reverse proxy with a login for anything beyond a classroom"
    )


def check_unix_socket(path: str) -> None:
    """OSError if a server cannot listen at path: its folder missing, or something there already (a socket that
    answers is another server's; a stale one, from a server that died, is removed)."""
    if not Path(path).parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(Path(path).parent))
    if not os.path.lexists(path):
        return
    if not stat.S_ISSOCK(os.lstat(path).st_mode):
        raise FileExistsError(errno.EEXIST, "a file that is not a socket is there")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)  # nobody listens: a dead server's
            return
    raise OSError(errno.EADDRINUSE, "Address already in use")


def check_port(host: str, port: int) -> None:
    """OSError if host:port cannot be listened on (taken, or not an address of this machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does
        probe.bind((host, port))


def claim_workdir(workdir: Path) -> int:
    """The work directory's lock (on the folder itself: no file left in it), held for the server's life (the kernel
    lets go when it ends, however it ends): one server per --workdir, so that its startup sweep removes no other
    server's live sessions. Returns the open folder's descriptor, kept open."""
    try:
        lock = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise RnnTuiError(f"cannot use --workdir {workdir}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(lock)
        raise RnnTuiError(f"--workdir {workdir} is in use by another rnn-tui serve ({exc.strerror or exc})") from exc
    return lock


def sweep_leftovers(workdir: Path) -> int:
    """Remove the session folders an earlier server left in workdir (one SIGKILLed with its reaper); how many."""
    removed = 0
    with contextlib.suppress(OSError), os.scandir(workdir) as entries:
        for entry in entries:
            if entry.name.startswith(SESSION_PREFIX) and entry.is_dir(follow_symlinks=False):
                removed += remove_tree(entry.path)
    return removed


def run_server(args: argparse.Namespace) -> int:
    changed = check_hooks()  # a textual-serve release that changed what this server overrides: refuse, in one line
    if changed:
        fail(changed)
    try:
        settings = settings_from_args(args)
    except RnnTuiError as exc:
        fail(exc)  # its settings named as flags (--corpus)
    where = settings.unix_socket or f"{settings.host}:{settings.port}"
    try:  # before the banner: aiohttp announces the app before it binds
        if settings.unix_socket is not None:
            check_unix_socket(settings.unix_socket)
        else:
            check_port(settings.host, settings.port)
    except OSError as exc:
        if settings.own_workdir:
            remove_tree(str(settings.workdir))
        fail(f"cannot listen on {where}: {exc.strerror or exc}")
    warning = host_warning(settings.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    if settings.log_file is not None:
        try:
            settings.log_file.open("a", encoding="utf-8").close()
        except OSError as exc:
            fail(f"cannot write --log {settings.log_file}: {exc.strerror or exc}")
    try:
        lock = claim_workdir(settings.workdir)
    except RnnTuiError as exc:
        fail(exc)
    leftovers = sweep_leftovers(settings.workdir)
    if leftovers:
        print(
            f"rnn-tui serve: removed {leftovers} session folder(s) an earlier server left in {settings.workdir}",
            file=sys.stderr,
            flush=True,
        )
    server = ClassroomServer(settings)
    server.workdir_lock = lock
    server.start_reaper()
    try:
        server.serve()
    except OSError as exc:  # the port is taken, the address is not this machine's
        fail(f"cannot listen on {where}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass
    finally:
        for session in server.sessions.values():  # only when the server itself failed: its shutdown ends them
            session.kill()
            remove_tree(str(session.mode.session_dir))
        if settings.own_workdir:
            remove_tree(str(settings.workdir))
        server.close_reaper()
    return 0
