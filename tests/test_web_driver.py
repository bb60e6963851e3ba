"""The served app's driver (tui.web_driver): a download's chunks, sent from Textual's input thread, and the screen's
frames, sent from the app's thread, reach the server as whole packets that its own decoder reads back.

With Textual's WebDriver as it is, the two threads' writes interleave in the pipe once it is full (a busy server):
the server could not decode a chunk and ended the session, its folder and the file being downloaded removed, with the
student's tab still open (tests/test_serve_browser.py saw the saved checkpoint gone, about one run in three under
load). The reader here is slow on purpose, so the pipe is full for most of the writes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from textual.app import App
from textual.drivers import web_driver
from textual.drivers.web_driver import WebDriver
from textual_serve._binary_encode import load as binary_load

from tui.web_driver import ServedWebDriver

CHUNK = 64 * 1024
PACKETS = 40


def packets_read_back(driver_class: type[WebDriver], monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, object]]:
    """Two threads write PACKETS each through a driver to a pipe read slowly; the packets as the server reads them."""
    monkeypatch.setattr(web_driver, "InputReader", lambda: None)  # no keys here (it would watch pytest's stdin)
    read_end, write_end = os.pipe()

    async def make() -> WebDriver:  # a driver takes the running loop
        return driver_class(App())

    with monkeypatch.context() as patch:
        patch.setattr(sys, "__stdout__", os.fdopen(write_end, "w", closefd=False))  # the driver writes to its fd
        driver = asyncio.run(make())

    def frames() -> None:
        for n in range(PACKETS):
            driver.write(chr(0x4E00 + n) * 30_000)  # a frame: 90 KB of UTF-8

    def chunks() -> None:
        for n in range(PACKETS):
            driver.write_binary_encoded(("deliver_chunk", "key", bytes([n]) * CHUNK))

    writers = [threading.Thread(target=frames), threading.Thread(target=chunks)]
    received = bytearray()

    def read() -> None:
        while data := os.read(read_end, 8192):
            received.extend(data)
            time.sleep(0.0005)

    reader = threading.Thread(target=read)
    reader.start()
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    os.close(write_end)
    reader.join()
    os.close(read_end)

    packets: list[tuple[bytes, object]] = []
    at = 0
    while at < len(received):
        kind, size = bytes(received[at : at + 1]), int.from_bytes(received[at + 1 : at + 5], "big")
        payload = bytes(received[at + 5 : at + 5 + size])
        at += 5 + size
        if kind == b"P":
            packets.append((kind, binary_load(payload)))  # raises DecodeError on a cut packet, as the server did
        else:
            assert kind == b"D", f"a packet of kind {kind!r}: the stream is out of step"
            packets.append((kind, payload.decode("utf-8")))
    return packets


def test_a_download_and_the_screen_reach_the_server_as_whole_packets(monkeypatch: pytest.MonkeyPatch) -> None:
    packets = packets_read_back(ServedWebDriver, monkeypatch)
    frames = [payload for kind, payload in packets if kind == b"D"]
    chunks = [payload for kind, payload in packets if kind == b"P"]
    assert frames == [chr(0x4E00 + n) * 30_000 for n in range(PACKETS)]
    assert chunks == [("deliver_chunk", "key", bytes([n]) * CHUNK) for n in range(PACKETS)]


def test_the_server_runs_sessions_with_that_driver() -> None:
    from tui.serve.session import SessionService
    from tui.served import ServedMode

    mode = ServedMode(Path(os.path.realpath("/tmp")), ("/corpus.txt",))
    service = SessionService("true", mode, 1, write_bytes=None, write_str=None, close=None, download_manager=None)
    assert service._build_environment()["TEXTUAL_DRIVER"] == "tui.web_driver:ServedWebDriver"
