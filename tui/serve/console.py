"""The teacher's console: one safe line per event (and, with --log, a JSON line), and the per-address throttle that
keeps refusals from flooding it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import IO, Any

from engine.errors import first_line

log = logging.getLogger("rnn-tui serve")


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
