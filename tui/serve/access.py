"""Who may open a session: the Origin and own-address checks, the join code, the tab's id, and refusals counted per
address (Access, a part of ClassroomServer).
"""

from __future__ import annotations

import hmac
import math
from urllib.parse import urlsplit

from aiohttp import web

from tui.serve.console import Throttle, clean, log
from tui.serve.pages import CODE_COOKIE
from tui.serve.settings import LOCAL_HOSTS, ServeSettings

TAB_PATTERN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class Access:
    """ClassroomServer's checks of a request, and its console lines (event, refuse)."""

    settings: ServeSettings
    throttle: Throttle

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
