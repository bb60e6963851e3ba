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
Each app process runs in served mode (tui.served): its own directory under --workdir as working directory,
file dialogs confined to it, the corpus fixed, training paused when nobody has touched the tab for a while.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from engine.corpus import find_corpus, missing_corpus_message
from engine.errors import RnnTuiError
from tui.cli import fail, train_argv
from tui.served import ServedMode

log = logging.getLogger("rnn-tui serve")

TEMPLATES = Path(__file__).parent / "templates"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
STOP_SECONDS = 3.0  # a closed tab's app gets this long to quit by itself (it takes about one) before a kill
FULL_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>rnn-tui: the classroom is full</title>
<style>body{{background:#0c181f;color:#eee;font-family:monospace;display:flex;height:90vh;align-items:center;
justify-content:center}}div{{max-width:36em;line-height:1.5}}a{{color:#ac5af4}}</style></head>
<body><div><h2>The classroom is full</h2>
<p>All {limit} sessions of this rnn-tui server are in use. A place frees up when someone closes their tab.</p>
<p><a href="">Try again</a></p></div></body></html>
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

    def app_command(self) -> str:
        """The shell command that starts one app process (exec: the shell's pid is the app's, for the kill)."""
        return "exec " + shlex.join([sys.executable, "-m", "tui.main", *self.app_flags])


def train_flags(args: argparse.Namespace) -> list[str]:
    """The `train` flags set in args, as command-line words, so every session gets exactly the teacher's."""
    return train_argv(args)


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
    cores = os.cpu_count() or 1
    max_sessions = args.max_sessions or cores
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
    return ServeSettings(
        host=args.host,
        port=args.port,
        public_url=args.public_url.rstrip("/") if args.public_url else None,
        max_sessions=max_sessions,
        workdir=workdir.resolve(),
        own_workdir=own_workdir,
        idle_seconds=args.idle_minutes * 60,
        threads=args.threads,
        corpora=(args.corpus,),
        app_flags=train_flags(args),
    )


class SessionService(AppService):
    """One tab's app process, run in served mode in its own directory; killed if it does not quit in time."""

    def __init__(self, command: str, mode: ServedMode, threads: int, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.mode = mode
        self.threads = threads
        self._stopped = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width, height)
        environment.update(self.mode.environment())
        # torch's intra-op pool follows --threads; OpenMP's own pool must not take every core either.
        environment["OMP_NUM_THREADS"] = str(self.threads)
        return environment

    async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
        # As textual-serve's, with the session's directory as working directory.
        self._process = process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),
            cwd=self.mode.session_dir,
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def run(self) -> None:
        await super().run()
        # The app's output has ended: it quit (ctrl+q) or died. Close the tab's connection either way, so the
        # page says the session ended instead of waiting on a process that is gone.
        with contextlib.suppress(Exception):
            await self.remote_close()

    async def stop(self) -> None:
        """Ask the app to quit; kill it if it has not within STOP_SECONDS; remove the session's files."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(super().stop(), STOP_SECONDS)
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        shutil.rmtree(self.mode.session_dir, ignore_errors=True)


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
        self._next_session = 0

    def initialize_logging(self) -> None:
        # One plain line per event for the teacher; textual-serve's handler prints tracebacks with locals.
        logging.basicConfig(level=logging.WARNING, format="rnn-tui serve: %(message)s")
        log.setLevel(logging.INFO)

    def _base_url(self, request: web.Request) -> str:
        """Where the browser reaches us: --public-url, else the address it used (never 0.0.0.0)."""
        return self.settings.public_url or f"{request.scheme}://{request.host}"

    async def handle_index(self, request: web.Request) -> web.Response:
        if len(self.sessions) >= self.settings.max_sessions:
            return web.Response(
                status=503, text=FULL_PAGE.format(limit=self.settings.max_sessions), content_type="text/html"
            )
        base = self._base_url(request)
        router = request.app.router
        websocket_url = base + str(router["websocket"].url_for())
        websocket_url = ("wss:" if base.startswith("https") else "ws:") + websocket_url.split(":", 1)[1]
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": websocket_url,
            "static_url": base + str(router["static"].url_for(filename="/")).rstrip("/") + "/",
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        if len(self.sessions) >= self.settings.max_sessions:  # opened before the others took the places
            limit = self.settings.max_sessions
            await websocket.send_bytes(f"\r\nThe classroom is full: all {limit} sessions are in use.\r\n".encode())
            await websocket.close()
            return websocket
        self._next_session += 1
        number = self._next_session
        session_dir = Path(tempfile.mkdtemp(prefix=f"session-{number}-", dir=self.settings.workdir))
        mode = ServedMode(session_dir.resolve(), self.settings.corpora, self.settings.idle_seconds)
        session = SessionService(
            self.command,
            mode,
            self.settings.threads,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
        )
        self.sessions[number] = session  # no await since the check above: the limit holds
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        try:
            await session.start(width, height)
            log.info(
                "session %d started (pid %s; %d of %d in use)",
                number,
                session.pid,
                len(self.sessions),
                self.settings.max_sessions,
            )
            await self._process_messages(websocket, session)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a malformed message from a browser ends that session, not the server
            log.warning("session %d: %s", number, exc)
        finally:
            await session.stop()
            del self.sessions[number]
            log.info("session %d ended (%d of %d in use)", number, len(self.sessions), self.settings.max_sessions)
            if not websocket.closed:
                await websocket.close()
        return websocket

    async def on_startup(self, app: web.Application) -> None:
        s = self.settings
        if s.public_url:
            url = s.public_url
        elif s.host in ("0.0.0.0", "::"):  # every address of this machine: name one the students can use
            url = f"http://{socket.gethostname()}:{s.port} (or this machine's address)"
        else:
            url = f"http://{s.host}:{s.port}"
        print(f"rnn-tui serve: open {url} in a browser (Ctrl+C stops the server)", flush=True)
        print(
            f"  at most {s.max_sessions} sessions, {s.threads} torch thread(s) each; "
            f"training pauses after {s.idle_seconds / 60:g} min without input"
            if s.idle_seconds
            else f"  at most {s.max_sessions} sessions, {s.threads} torch thread(s) each",
            flush=True,
        )
        print(f"  each session's files: a fresh directory in {s.workdir}, removed when its tab closes", flush=True)

    async def on_shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(session.stop() for session in list(self.sessions.values())))
        if self.settings.own_workdir:
            shutil.rmtree(self.settings.workdir, ignore_errors=True)


def host_warning(host: str) -> str | None:
    if host in LOCAL_HOSTS:
        return None
    return (
        f"rnn-tui serve: warning: listening on {host}: anyone who can reach this port can run training on this "
        "machine (and use its CPU); use a firewall or a reverse proxy with a login for anything beyond a classroom"
    )


def check_port(host: str, port: int) -> None:
    """OSError if host:port cannot be listened on (taken, or not an address of this machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does
        probe.bind((host, port))


def run_server(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except RnnTuiError as exc:
        fail(str(exc))
    try:  # before the banner: aiohttp announces the app before it binds
        check_port(settings.host, settings.port)
    except OSError as exc:
        if settings.own_workdir:
            shutil.rmtree(settings.workdir, ignore_errors=True)
        fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
    warning = host_warning(settings.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    server = ClassroomServer(settings)
    try:
        server.serve()
    except OSError as exc:  # the port is taken, the address is not this machine's
        fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass
    finally:
        if settings.own_workdir:
            shutil.rmtree(settings.workdir, ignore_errors=True)
    return 0
