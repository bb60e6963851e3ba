"""textual-serve's private parts that `rnn-tui serve` (tui.serve) builds on, in one place, checked before use.

tui.serve subclasses textual-serve's Server and AppService and overrides methods that are not its public API
(`_open_app_process`, `_build_environment`, `_process_messages`, `_make_app`, `handle_websocket` with a wider
return type), reads its instance state (`_process`, `_task`, `_stdin`, `remote_write_bytes`…) and decodes its
packed packets with its private `_binary_encode.load`. A release may change any of them without notice: the server
would then misbehave in a classroom rather than fail. So: pyproject bounds textual-serve to the releases tested
(TESTED), `check_hooks()` compares every hook's signature with the one tui.serve was written against and refuses to
start with one line naming what changed, and tests/test_serve_hooks.py fails loudly on such a release.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version
from typing import Any

from textual_serve._binary_encode import load as _binary_load
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager
from textual_serve.server import Server

TESTED = "1.1"  # the textual-serve minor releases tui.serve was written and tested against (pyproject: <1.2)

# (class, method) → its parameters as tui.serve calls or overrides them.
HOOKS: dict[tuple[type, str], tuple[str, ...]] = {
    (Server, "_make_app"): ("self",),
    (Server, "handle_index"): ("self", "request"),
    (Server, "handle_websocket"): ("self", "request"),
    (Server, "_process_messages"): ("self", "websocket", "app_service"),
    (Server, "handle_download"): ("self", "request"),
    (Server, "initialize_logging"): ("self",),
    (Server, "on_startup"): ("self", "app"),
    (Server, "on_shutdown"): ("self", "app"),
    (AppService, "__init__"): ("self", "command", "write_bytes", "write_str", "close", "download_manager", "debug"),
    (AppService, "_build_environment"): ("self", "width", "height"),
    (AppService, "_open_app_process"): ("self", "width", "height"),
    (AppService, "set_terminal_size"): ("self", "width", "height"),
    (AppService, "on_packed"): ("self", "payload"),
    (AppService, "run"): ("self",),
    (AppService, "stop"): ("self",),
    (AppService, "start"): ("self", "width", "height"),
    (DownloadManager, "get_download_metadata"): ("self", "delivery_key"),
    (DownloadManager, "download"): ("self", "delivery_key"),
}
# AppService's instance state tui.serve reads or replaces (a reattached tab swaps the remote_* callbacks).
STATE = ("_process", "_task", "_stdin", "remote_write_bytes", "remote_write_str", "remote_close", "app_service_id")


def changed_hooks() -> list[str]:
    """What differs from what tui.serve was written against (empty: nothing)."""
    changed = []
    for (cls, name), expected in HOOKS.items():
        method = getattr(cls, name, None)
        if method is None:
            changed.append(f"{cls.__name__}.{name} is gone")
            continue
        found = tuple(inspect.signature(method).parameters)
        if found != expected:
            changed.append(f"{cls.__name__}.{name}{found} (was {expected})")
    source = inspect.getsource(AppService.__init__)
    changed += [f"AppService no longer sets self.{name}" for name in STATE if f"self.{name}" not in source]
    return changed


def check_hooks() -> str | None:
    """None when the installed textual-serve is one tui.serve was tested with; else one line saying what changed."""
    installed = version("textual-serve")
    changed = changed_hooks()
    if not changed:
        return None
    return (
        f"rnn-tui serve was tested with textual-serve {TESTED}.x; the installed {installed} changed "
        f"{'; '.join(changed[:3])}: install textual-serve~={TESTED}.0"
    )


def binary_load(payload: bytes) -> Any:
    """A packed packet from an app process (a download's chunk), decoded as textual-serve does."""
    return _binary_load(payload)
