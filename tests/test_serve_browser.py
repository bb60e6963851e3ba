"""`rnn-tui serve` in a real browser: the distribution's headless Chromium, driven by Playwright for Python (no
browser download), against a real server, app processes, torch and corpus.

Reading the terminal: textual-serve's page draws the terminal on a canvas, so its text is not in the DOM. An init
script records what the page's websocket receives (the terminal's byte stream, decoded as the terminal decodes
it); the tests read the app's text there. Glyphs: the page draws each generated character with the terminal's
own font stack on a scratch canvas and compares it with a character no font has (U+10FFFD, drawn as the empty
box). Equal pixels mean an empty box. The screenshot is kept for a person to look at (its path is printed).

Skipped, with the reason, where Chromium or Playwright is missing (.ci/run installs both).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from conftest import BOOK_CORPUS, PROJECT_ROOT

if TYPE_CHECKING:  # Playwright is imported below, or the module skipped
    from playwright.sync_api import BrowserContext, Dialog, Page

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install it with apt-get install chromium fonts-noto-cjk (.ci/run does)",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed: pip install -e '.[test]'"
)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium phones home (updates, sync, safe browsing) on its own; the test allows no request
    # beyond 127.0.0.1, and a closed network refuses them anyway.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("RNN_TUI_ARTIFACTS", PROJECT_ROOT / "build" / "artifacts"))
MAX_SESSIONS = 2
EPOCHS = 2000
GENERATE_AFTER_EPOCH = 40
# Records the terminal's byte stream as the page's websocket receives it (see the module's docstring).
RECORD_TERMINAL = """
window.__terminal = "";
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    const decoder = new TextDecoder();
    this.addEventListener("message", (event) => {
      if (typeof event.data !== "string") {
        window.__terminal += decoder.decode(new Uint8Array(event.data), { stream: true });
      }
    });
  }
};
"""
# Draws characters with the terminal's font stack; true where a character's pixels differ from the empty box's.
HAS_GLYPHS = """
(chars) => {
  const measure = document.querySelector(".xterm-char-measure-element");
  const family = (measure && measure.style.fontFamily) || "'Roboto Mono', Monaco, 'Courier New', monospace";
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 48;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const draw = (char) => {
    context.clearRect(0, 0, 48, 48);
    context.font = `32px ${family}`;
    context.fillText(char, 4, 36);
    return context.getImageData(0, 0, 48, 48).data.join(",");
  };
  const box = draw("\\u{10FFFD}");
  return {
    family,
    boxesAlike: box === draw("\\u{10FFFC}"),  // two characters no font has: the same empty box
    latinDrawn: draw("a") !== box,  // and a character every font has is not that box
    glyphs: chars.map((c) => draw(c) !== box),
  };
}
"""
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
CJK = re.compile(r"[\u3400-\u9fff]")
REQUESTED: list[str] = []  # every address the browser asked for (its requests and websockets), since it started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def children(pid: int) -> set[int]:
    """The live app processes whose parent is pid (the server's sessions; not its reaper)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            app = b"tui.main" in (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and app:
            found.add(int(stat.parent.name))
    return found


def wait_until(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def screen_text(page: Page) -> str:
    return ANSI.sub("", page.evaluate("window.__terminal"))


def epochs_shown(page: Page) -> list[int]:
    return [int(n) for n in re.findall(rf"epoch (\d+)/{EPOCHS}", screen_text(page))]


@contextmanager
def serving(max_sessions: int, reload_seconds: int, prefix: str) -> Iterator[tuple[int, subprocess.Popen[str], Path]]:
    """`rnn-tui serve` on a free port (the book's corpus, hidden 64, no samples), once it listens: its port, process
    and workdir; stopped with ctrl+c and its workdir removed after."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    command = [
        *(sys.executable, "-m", "tui.main", "serve", "--port", str(port), "--workdir", str(workdir)),
        *("--max-sessions", str(max_sessions), "--corpus", str(BOOK_CORPUS), "--epochs", str(EPOCHS)),
        *("--hidden", "64", "--pred-period", "100000", "--seed", "0", "--reload-seconds", str(reload_seconds)),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: _accepts(port) or process.poll() is not None, "the server to listen", 30)
        assert process.poll() is None, process.communicate()[0]
        yield port, process, workdir
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    # --reload-seconds 0: a closed tab ends its session at once (the reload's wait: test_serve_lifecycle)
    with serving(MAX_SESSIONS, 0, "rnn-tui-serve-test-") as (port, process, workdir):
        yield {"url": f"http://127.0.0.1:{port}/", "pid": process.pid, "workdir": workdir, "process": process}


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    profile = tempfile.mkdtemp(prefix="rnn-tui-chromium-")
    with playwright_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 800},
        )
        REQUESTED.clear()
        context.on("request", lambda request: REQUESTED.append(request.url))
        context.on("page", lambda page: page.on("websocket", lambda ws: REQUESTED.append(ws.url)))
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def open_tab(browser: BrowserContext, url: str) -> Page:
    page = browser.new_page()
    page.add_init_script(RECORD_TERMINAL)
    page.goto(url)
    return page


# Keys go at a fast typist's pace. A burst (all keys in one read) can reach a Textual Input out of order: a
# printable key is inserted as it arrives, while Backspace goes through the key bindings a step later.
KEY_GAP_SECONDS = 0.15


def failure_shot(page: Page) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "serve-browser-failed.png"
    page.screenshot(path=str(path))
    return path


def press(page: Page, key: str) -> None:
    page.keyboard.press(key)
    time.sleep(KEY_GAP_SECONDS)


def type_text(page: Page, text: str) -> None:
    """Type as a keyboard does: a key event carrying each character. (Playwright's keyboard.type sends characters
    beyond the US layout as an "insertText" input event, which xterm.js ignores after its own key handling.)"""
    cdp = page.context.new_cdp_session(page)
    for char in text:
        cdp.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": char, "unmodifiedText": char, "key": char})
        cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": char})
        time.sleep(KEY_GAP_SECONDS)
    cdp.detach()


def test_a_student_trains_generates_and_cannot_save_outside(
    server: dict[str, Any], browser: BrowserContext, capsys: pytest.CaptureFixture[str]
) -> None:
    page = open_tab(browser, server["url"])
    wait_until(lambda: "Status" in screen_text(page) and epochs_shown(page), "the app's Status and an epoch")
    first = max(epochs_shown(page))
    wait_until(lambda: max(epochs_shown(page)) > first, "the epoch to advance")
    # Early weights generate mostly spaces; by epoch 40 or so (seconds at hidden 64) they write characters.
    wait_until(lambda: max(epochs_shown(page)) >= GENERATE_AFTER_EPOCH, f"epoch {GENERATE_AFTER_EPOCH}")

    # Keys reach the app once the terminal has focus.
    page.click("#terminal")
    press(page, "F2")
    for _ in range(4):  # the prefix box starts with 分开
        press(page, "Backspace")
    prefix = "我"
    type_text(page, prefix)
    before = len(screen_text(page))
    page.keyboard.press("Enter")
    # The output: text, then (its source): "weights after epoch 48", or mid-epoch "after batch 2 of 8 of epoch 48".
    # The label may wrap onto the next row, the panel's border between its words: anything but ")" up to "epoch".
    pattern = re.compile(rf"{prefix}([^()]*?)\s*\(weights after [^)]*?epoch")

    def generated() -> str | None:
        text = screen_text(page)  # the Generate panel's output, under its title (nothing before Enter)
        found = pattern.search(text[text.rfind("Generate") :])
        return found.group(0) if found and len(CJK.findall(found.group(1))) >= 3 else None

    try:
        wait_until(generated, "generated text")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the screen: {failure_shot(page)}") from None
    text = generated() or ""
    chars = sorted(set(CJK.findall(text)))
    drawn = page.evaluate(HAS_GLYPHS, chars)
    assert drawn["boxesAlike"] and drawn["latinDrawn"], f"the glyph check itself does not work: {drawn}"
    missing = [c for c, ok in zip(chars, drawn["glyphs"], strict=True) if not ok]
    assert not missing, f"drawn as empty boxes with {drawn['family']}: {''.join(missing)} (is fonts-noto-cjk there?)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "serve-browser.png"
    page.screenshot(path=str(shot))
    pixels = shot.stat().st_size
    assert pixels > 20_000  # a drawn app, not a blank page (a blank 1200×800 PNG is a few KiB)

    # Saving outside the session's directory is refused, and nothing is written there.
    page.keyboard.press("Control+s")
    wait_until(lambda: "Save a checkpoint" in screen_text(page), "the save dialog")
    for _ in range(14):  # rnn-tui.ckpt
        press(page, "Backspace")
    type_text(page, "../escaped.ckpt")
    page.keyboard.press("Enter")
    wait_until(lambda: "stay in this session" in screen_text(page)[before:], "the refusal")
    assert not (server["workdir"] / "escaped.ckpt").exists()
    page.screenshot(path=str(ARTIFACTS / "serve-browser-refused.png"))

    # Inside the session: saved there, and downloaded to the student's computer (the browser's own download).
    for _ in range(15):  # ../escaped.ckpt
        press(page, "Backspace")
    type_text(page, "mine.ckpt")
    with page.expect_download(timeout=60_000) as download:
        page.keyboard.press("Enter")
    try:
        (saved,) = server["workdir"].glob("session-*/mine.ckpt")
        kept = saved.read_bytes()
    except (ValueError, OSError) as exc:  # the session ended mid-download (tests/test_web_driver.py): say what it held
        raise AssertionError(f"{exc}; the sessions' files: {sorted(server['workdir'].rglob('*'))}") from None
    assert download.value.suggested_filename == "mine.ckpt"
    assert Path(download.value.path()).read_bytes() == kept

    outside = [url for url in REQUESTED if urlsplit(url).hostname != "127.0.0.1"]
    assert not outside, f"the page asked beyond this machine: {outside}"
    assert any(url.startswith("ws://127.0.0.1") for url in REQUESTED)  # the terminal's own connection
    with capsys.disabled():
        print(f"\nbrowser screenshot: {shot} (generated: {text}; font stack: {drawn['family']})")
    page.close()


def test_each_tab_its_own_process_closing_ends_it_and_a_full_class_says_so(
    server: dict[str, Any], browser: BrowserContext
) -> None:
    pid = server["pid"]
    wait_until(lambda: not children(pid), "the earlier tests' sessions to end", 20)
    first = open_tab(browser, server["url"])
    wait_until(lambda: len(children(pid)) == 1, "the first tab's process")
    (first_process,) = children(pid)
    second = open_tab(browser, server["url"])
    wait_until(lambda: len(children(pid)) == 2, "the second tab's process")  # its own, beside the first
    wait_until(lambda: "Status" in screen_text(second), "the second tab's app")
    assert len(list(server["workdir"].iterdir())) == 2  # a directory each

    full = browser.new_page()  # a third tab when both places are taken: a page saying so, not a hang
    response = full.goto(server["url"])
    assert response is not None and response.status == 503
    body = full.inner_text("body")
    assert "The classroom is full" in body and f"All {MAX_SESSIONS} sessions" in body
    full.close()

    second.close()
    wait_until(lambda: children(pid) == {first_process}, "the closed tab's process to end", 20)
    wait_until(lambda: len(list(server["workdir"].iterdir())) == 1, "the closed tab's directory to go", 10)
    # An app process that dies (here: killed) ends its session cleanly: the page says so, its files go.
    os.kill(first_process, signal.SIGKILL)
    wait_until(lambda: "-closed" in (first.get_attribute("body", "class") or ""), "the page to say it ended", 20)
    wait_until(lambda: not children(pid) and not list(server["workdir"].iterdir()), "the session's cleanup", 20)
    first.close()


def test_a_reload_in_chromium_finds_its_app_training_and_closing_asks_first(browser: BrowserContext) -> None:
    """Issue 32, item 9, in a real browser: the page's tab id brings a reload back to its own app (same process,
    training on); closing the tab while its session runs asks "leave this page?" first."""
    with serving(1, 30, "rnn-tui-serve-reload-") as (port, process, _):
        page = open_tab(browser, f"http://127.0.0.1:{port}/")
        wait_until(lambda: len(epochs_shown(page)) > 0 and max(epochs_shown(page)) >= 3, "three epochs")
        (app,) = children(process.pid)
        before = max(epochs_shown(page))
        page.reload()  # no click yet: the browser asks nothing before a page the user has not touched
        wait_until(lambda: epochs_shown(page), "the screen drawn again after the reload")
        assert children(process.pid) == {app}  # the same app: not a fresh one at epoch 0
        assert min(epochs_shown(page)) >= before
        page.click("#terminal")
        asked: list[str] = []

        def answer(dialog: Dialog) -> None:
            asked.append(dialog.type)
            dialog.accept()

        page.on("dialog", answer)
        page.close(run_before_unload=True)
        if not page.is_closed():  # (Playwright's events arrive during its own calls, not during a sleep)
            page.wait_for_event("close", timeout=30_000)
        assert asked == ["beforeunload"]
