"""The driver a served session's app runs with (rnn-tui serve sets TEXTUAL_DRIVER to it): Textual's WebDriver,
each packet written to the server whole and alone.

Textual's WebDriver (textual 8.2.8) writes its packets to stdout with a bare os.write from two threads: the screen's
frames from the app's thread, and a file download's 64 KiB chunks from its input thread (it answers the server's
chunk requests there). A write to a pipe longer than PIPE_BUF (4 KiB) is not atomic: when the pipe is full (a busy
server, a loaded machine) one thread's write is cut and the other's bytes land inside it, and os.write's count of
what it wrote is ignored. The server then reads a packet whose length and contents do not match, cannot decode it,
and ends the session: its folder, with the file being downloaded, removed while the visitor's tab is still open.
Here every packet goes out under one lock, written to its last byte.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from functools import partial
from typing import Any

from textual.app import App
from textual.drivers.web_driver import WebDriver


class ServedWebDriver(WebDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock = threading.Lock()
        self._write = partial(write_whole, self._write_lock, self.fileno)


def pending_deliveries(app: App[Any]) -> int:
    """Files the app has offered as downloads that its server has not read to the end yet (0 outside serve)."""
    driver = app._driver
    return len(driver._deliveries) if isinstance(driver, WebDriver) else 0


async def deliveries_done(app: App[Any], limit: float) -> None:
    """Wait (at most `limit` seconds) until every download the app offered has been read to its end: an app that
    leaves first cuts them off."""
    deadline = time.monotonic() + limit
    while pending_deliveries(app) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


def write_whole(lock: threading.Lock, fileno: int, data: bytes) -> int:
    """Write all of data to fileno, no other packet between its bytes; returns its length (as os.write would)."""
    with lock:
        view = memoryview(data)
        while view:
            view = view[os.write(fileno, view) :]
    return len(data)
