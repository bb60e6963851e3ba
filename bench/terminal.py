"""A program in a pseudo-terminal, read as a person would see it: for the start-up and key-press benchmarks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time

ESCAPES = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)")
UNFINISHED = re.compile(rb"\x1b(\[[0-?]*[ -/]*|\][^\x07\x1b]*)?")
CTRL_Q = b"\x11"
F5 = b"\x1b[15~"
Marker = bytes | re.Pattern[bytes]


def found(marker: Marker, text: bytes) -> bool:
    return marker.search(text) is not None if isinstance(marker, re.Pattern) else marker in text


class Terminal:
    """command running in a columns×rows pty; what it paints is read with the escape sequences stripped."""

    def __init__(self, command: list[str], env: dict[str, str], columns: int = 100, rows: int = 30) -> None:
        self._leader, follower = os.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.started = time.perf_counter()
        self.child = subprocess.Popen(
            command, stdin=follower, stdout=follower, stderr=follower, env=env, start_new_session=True, close_fds=True
        )
        os.close(follower)
        self._raw = b""  # a chunk can end inside an escape sequence: strip only what is complete
        self.last_press: float | None = None

    def read(self, wait: float) -> bytes | None:
        """What was painted within wait seconds (escape sequences stripped), b"" if nothing, None once closed."""
        if not select.select([self._leader], [], [], wait)[0]:
            return b""
        try:
            self._raw += os.read(self._leader, 65536)
        except OSError:
            return None
        cut = self._raw.rfind(b"\x1b")
        if cut != -1 and UNFINISHED.fullmatch(self._raw, cut):  # keep a cut-off sequence for the next read
            complete, self._raw = self._raw[:cut], self._raw[cut:]
        else:
            complete, self._raw = self._raw, b""
        return ESCAPES.sub(b"", complete)

    def watch(self, markers: dict[str, Marker], timeout: float) -> dict[str, float]:
        """Seconds from `since` (launch, or the last press) until each marker first appears; those seen in time."""
        since = self.last_press or self.started
        seen: dict[str, float] = {}
        text = b""
        deadline = time.perf_counter() + timeout
        while len(seen) < len(markers) and time.perf_counter() < deadline:
            chunk = self.read(0.005)
            if chunk is None:
                break
            now = time.perf_counter() - since
            text = (text + chunk)[-8192:]  # markers are short; keep the tail only
            for name, marker in markers.items():
                if name not in seen and found(marker, text):
                    seen[name] = now
        return seen

    def press(self, keys: bytes) -> None:
        self.drain()
        os.write(self._leader, keys)
        self.last_press = time.perf_counter()

    def drain(self) -> None:
        """Read away what is already painted, so that a watch after a press sees only what the press caused."""
        while True:
            chunk = self.read(0)
            if not chunk:
                return

    def quit(self, keys: bytes = CTRL_Q, timeout: float = 10) -> float | None:
        """Press keys (ctrl+q) and return the seconds until the program has exited, None if it did not."""
        self.press(keys)
        assert self.last_press is not None
        while self.child.poll() is None and time.perf_counter() - self.last_press < timeout:
            if self.read(0.05) is None:  # the pty closed: the program is leaving
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.child.wait(timeout=max(0.0, timeout - (time.perf_counter() - self.last_press)))
        return time.perf_counter() - self.last_press if self.child.poll() is not None else None

    def close(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()
        with contextlib.suppress(OSError):
            os.close(self._leader)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
