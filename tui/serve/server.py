"""The classroom server: textual-serve's Server with a seat per tab (SessionService), its pages, its websockets,
reloads, downloads and releases, and one line per event for the teacher.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import WSMsgType, web
from textual_serve.server import Server, to_int

from engine.errors import first_line
from tui.serve.access import Access
from tui.serve.cleanup import SESSION_PREFIX, Reaper
from tui.serve.console import EventHandler, Throttle, log
from tui.serve.pages import CODE_COOKIE, CODE_PAGE, FULL_PAGE, TEMPLATES
from tui.serve.session import SessionService, capped
from tui.serve.settings import MIB, ServeSettings
from tui.served import ServedMode, duration, remove_tree

MAX_MESSAGE = 1 << 20  # bytes in one message from a browser (keys, a paste, a resize): more ends the session


class ClassroomServer(Access, Server):
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
        self.reaper = Reaper()  # what to clean if this server dies
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
        self.reaper.tell("dir", session_dir)
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
        reason = "the tab closed"
        try:
            width, height = capped(
                to_int(request.query.get("width", "80"), 80), to_int(request.query.get("height", "24"), 24)
            )
            await session.start(width, height)
            self.reaper.tell("group", session.pid)
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
        reason = "the tab closed"
        try:
            width, height = capped(
                to_int(request.query.get("width", "80"), 80), to_int(request.query.get("height", "24"), 24)
            )
            await session.repaint(width, height)
            reason = await self._process_messages(websocket, session)
        except asyncio.CancelledError:
            reason = "the server stopped"
        except Exception as exc:
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
                self.reaper.tell("done", session.pid)
                if session.folder_gone:  # else the reaper removes it when the server ends
                    self.reaper.tell("undir", session.mode.session_dir)
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
        # The socket is its owner's alone (0600, whatever the umask): another user of the machine cannot connect.
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.settings.unix_socket)
            os.chmod(self.settings.unix_socket, 0o600)
            web.run_app(self._make_app(), sock=listener, handle_signals=False, loop=loop, print=None)
        finally:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(self.settings.unix_socket)

    async def on_shutdown(self, app: web.Application) -> None:
        self._stopping = True
        for session in self.sessions.values():
            session.patient = False
        await asyncio.gather(*(self._release(number, "the server stopped") for number in list(self.sessions)))
        if self.settings.own_workdir:
            remove_tree(str(self.settings.workdir))
