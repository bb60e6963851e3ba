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

import os
import threading
from functools import partial
from typing import Any

from textual.drivers.web_driver import WebDriver


class ServedWebDriver(WebDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock = threading.Lock()
        self._write = partial(write_whole, self._write_lock, self.fileno)


def write_whole(lock: threading.Lock, fileno: int, data: bytes) -> int:
    """Write all of data to fileno, no other packet between its bytes; returns its length (as os.write would)."""
    with lock:
        view = memoryview(data)
        while view:
            view = view[os.write(fileno, view) :]
    return len(data)
