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

from textual.drivers.web_driver import WebDriver


class ServedWebDriver(WebDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock = threading.Lock()
        self._write = partial(write_whole, self._write_lock, self.fileno)
        self.fetching: set[str] = set()  # downloads a browser has asked a chunk of (the others: offered only)

    def on_meta(self, packet_type: str, payload: dict[str, object]) -> None:
        if packet_type == "deliver_chunk_request":
            self.fetching.add(str(payload.get("key")))
        super().on_meta(packet_type, payload)


START_WAIT = 10.0  # seconds a download offered but not yet asked for is waited for (nobody may be at the tab)


def pending_deliveries(app: object) -> tuple[int, int]:
    """(downloads a browser is reading, downloads offered and not yet asked for) of the app (a Textual App, or what
    stands for one; 0, 0 outside serve)."""
    driver = getattr(app, "_driver", None)
    if not isinstance(driver, ServedWebDriver):
        return 0, 0
    keys = set(driver._deliveries)
    return len(keys & driver.fetching), len(keys - driver.fetching)


async def deliveries_done(app: object, limit: float) -> None:
    """Wait until every download the app offered has been read to its end (an app that leaves first cuts them off):
    at most `limit` seconds for those being read, START_WAIT for those nobody has asked for yet."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        reading, offered = pending_deliveries(app)
        if not reading and (not offered or time.monotonic() - start > START_WAIT):
            return
        await asyncio.sleep(0.2)


def write_whole(lock: threading.Lock, fileno: int, data: bytes) -> int:
    """Write all of data to fileno, no other packet between its bytes; returns its length (as os.write would)."""
    with lock:
        view = memoryview(data)
        while view:
            view = view[os.write(fileno, view) :]
    return len(data)
