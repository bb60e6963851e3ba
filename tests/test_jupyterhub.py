"""rnn-tui on JupyterHub (issue 32, item 10), tried as a student does, in the distribution's Chromium: a real hub
(deploy/jupyterhub/jupyterhub_config.py: DummyAuthenticator, a local-process spawner, configurable-http-proxy) on
loopback ports, a login, JupyterLab's launcher, and rnn-tui behind /user/NAME/rnn-tui/ (tui/jupyter.py's entry
point: `rnn-tui serve` on a Unix socket, the prefix stripped by jupyter-server-proxy). Also, without a hub: the
server's Origin check behind such a proxy (the hub's Host and Origin pass, a foreign Origin does not).

Skipped, each with its reason, where jupyterhub, JupyterLab, jupyter-server-proxy, configurable-http-proxy (npm),
Chromium or Playwright is missing (.ci/run installs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BOOK_CORPUS, PROJECT_ROOT

HUB_CONFIG = PROJECT_ROOT / "deploy" / "jupyterhub" / "jupyterhub_config.py"
USER = "ada"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ----- the server behind the proxy, without a hub -----


def start_unix_server(folder: Path) -> tuple[subprocess.Popen[str], Path]:
    sock = folder / "socket"
    command = [
        *(sys.executable, "-m", "tui.main", "serve", "--unix-socket", str(sock)),
        *("--public-url", f"/user/{USER}/rnn-tui/", "--max-sessions", "1", "--corpus", str(BOOK_CORPUS)),
        *("--workdir", str(folder / "work"), "--reload-seconds", "0", "--hidden", "16"),
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not sock.exists():
        assert server.poll() is None, server.communicate()[1]
        assert time.monotonic() < deadline, "the server never listened"
        time.sleep(0.1)
    return server, sock


async def upgrade(sock: Path, host: str, origin: str) -> int:
    """The status a websocket upgrade through the Unix socket gets (101: a session opened; closed at once)."""
    import aiohttp

    headers = {"Host": host, "Origin": origin}
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as client:
        try:
            async with client.ws_connect("http://localhost/ws/abcdefgh12345678", headers=headers) as websocket:
                await websocket.close()
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_behind_the_hubs_proxy_its_host_and_origin_pass_and_a_foreign_origin_does_not(tmp_path: Path) -> None:
    pytest.importorskip("textual_serve", reason="the serve extra is not installed: pip install -e '.[serve]'")
    import aiohttp

    server, sock = start_unix_server(tmp_path)
    try:
        assert sock.stat().st_mode & 0o777 == 0o600  # the user's alone, whatever the umask (connecting needs write)

        async def page() -> str:
            connector = aiohttp.UnixConnector(path=str(sock))
            async with (
                aiohttp.ClientSession(connector=connector) as client,
                client.get("http://localhost/", headers={"Host": "hub.example.org"}) as response,
            ):
                assert response.status == 200
                return await response.text()

        html = asyncio.run(page())
        # Paths under the user's prefix; the page itself names no host (it takes its own: http or https).
        assert 'data-session-websocket-url="/user/ada/rnn-tui/ws"' in html
        assert 'src="/user/ada/rnn-tui/static/js/textual.js"' in html
        assert 'const basePath = "/user/ada/rnn-tui"' in html  # downloads go under the prefix too
        assert "hub.example.org" not in html
        # The hub keeps the browser's Host and Origin: its own page passes (http, or https ended at the hub)...
        assert asyncio.run(upgrade(sock, "hub.example.org", "https://hub.example.org")) == 101
        time.sleep(1.5)  # (that session's end, before the next takes the one seat)
        assert asyncio.run(upgrade(sock, "hub.example.org:8000", "http://hub.example.org:8000")) == 101
        # ...a page elsewhere does not, nor a look-alike host.
        for origin in ("http://evil.example", "https://hub.example.org.evil.example", "null", ""):
            assert asyncio.run(upgrade(sock, "hub.example.org", origin)) == 403, origin
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert f"listening on {sock}" in err and "Traceback" not in err
    assert not sock.exists()  # removed when the server stops
    assert "open /user/ada/rnn-tui/ through the proxy" in out
    assert err.count("refused a connection") == 4 and "Origin http://evil.example" in err


def test_a_path_alone_needs_a_unix_socket() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tui.main", "serve", "--public-url", "/user/ada/rnn-tui/", "--corpus", str(BOOK_CORPUS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "needs --unix-socket" in result.stderr and result.stderr.count("\n") == 1


def test_the_entry_point_is_what_jupyter_server_proxy_loads() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="jupyter_serverproxy_servers") if e.name == "rnn-tui"]
    config = entry.load()()
    assert config["unix_socket"] is True and config["absolute_url"] is False
    assert config["command"][:4] == [sys.executable, "-m", "tui.main", "serve"]
    assert "{unix_socket}" in config["command"] and "{base_url}rnn-tui/" in config["command"]
    assert config["launcher_entry"]["title"] == "rnn-tui" and Path(config["launcher_entry"]["icon_path"]).is_file()
    assert config["timeout"] >= 30  # a cold start imports torch


def test_the_spawners_limits_are_shared_out_between_the_users_seats() -> None:
    from tui.jupyter import SEATS, command, spawner_limits

    assert SEATS == 2
    assert spawner_limits({}) == []  # no limit set: serve's own (the cgroup's memory, the machine's cores)
    four = {"CPU_LIMIT": "4.0", "MEM_LIMIT": str(4 * 2**30)}
    assert spawner_limits(four) == ["--threads", "2", "--seat-memory", "1792"]  # (4 GiB - 512 MiB) / 2
    assert spawner_limits({"CPU_LIMIT": "0.5", "MEM_LIMIT": str(2**30)}) == ["--threads", "1", "--seat-memory", "512"]
    assert spawner_limits({"CPU_LIMIT": "lots", "MEM_LIMIT": "2G"}) == []  # not numbers: left to serve
    assert spawner_limits({"CPU_LIMIT": "nan"}) == []
    flags = command({"CPU_LIMIT": "2"})
    assert flags[flags.index("--threads") + 1] == "1"
    # And serve takes them, once the proxy has filled in its placeholders.
    from tui.cli import parse

    filled = [word.format(unix_socket="/tmp/s", base_url="/user/ada/") for word in flags[3:]]
    args = parse([*filled, "--corpus", str(BOOK_CORPUS)])
    assert (args.unix_socket, args.public_url) == ("/tmp/s", "/user/ada/rnn-tui/")
    assert (args.max_sessions, args.threads) == (2, 1)


def terminal_size_seen(follow: bool) -> str:
    """What shutil (Textual's source of the size) says in a 70×20 terminal whose shell exported COLUMNS=100 and
    LINES=30, as terminado's does, with or without tui.main's follow_the_terminal."""
    import pty
    import struct
    import termios
    from fcntl import ioctl

    code = (
        "import shutil, tui.main as m\n"
        + ("m.follow_the_terminal()\n" if follow else "")
        + "print('SIZE', *shutil.get_terminal_size())"
    )
    leader, follower = pty.openpty()
    ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 20, 70, 0, 0))
    environment = {**os.environ, "COLUMNS": "100", "LINES": "30"}
    child = subprocess.Popen([sys.executable, "-c", code], stdin=follower, stdout=follower, env=environment)
    os.close(follower)
    output = b""
    with contextlib.suppress(OSError):  # EIO once the child has gone
        while chunk := os.read(leader, 1024):
            output += chunk
    child.wait(timeout=30)
    os.close(leader)
    return str(re.findall(r"SIZE (\d+ \d+)", output.decode())[0])


def test_in_a_terminal_that_exports_its_first_size_the_app_reads_the_real_one() -> None:
    assert terminal_size_seen(follow=False) == "100 30"  # what Textual saw in JupyterLab's terminal: never a resize
    assert terminal_size_seen(follow=True) == "70 20"


# ----- a real hub, in Chromium -----

MISSING = [
    why
    for missing, why in (
        (importlib.util.find_spec("jupyterhub") is None, "jupyterhub"),
        (importlib.util.find_spec("jupyterlab") is None, "jupyterlab"),
        (importlib.util.find_spec("jupyter_server_proxy") is None, "jupyter-server-proxy"),
        (shutil.which("configurable-http-proxy") is None, "configurable-http-proxy (npm install -g)"),
        (not Path("/usr/bin/chromium").exists(), "Chromium (/usr/bin/chromium)"),
        (importlib.util.find_spec("playwright") is None, "Playwright"),
    )
    if missing
]
needs_hub = pytest.mark.skipif(
    bool(MISSING), reason=f"not installed: {', '.join(MISSING)} (pip install -e '.[jupyter]' jupyterhub jupyterlab)"
)


@pytest.fixture(scope="module")
def hub() -> Iterator[dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="rnn-tui-hub-test-"))
    port, hub_port, api_port = free_port(), free_port(), free_port()
    environment = {
        **os.environ,
        "RNN_TUI_CORPUS": str(BOOK_CORPUS),
        "RNN_TUI_HUB_URL": f"http://127.0.0.1:{port}",
        "RNN_TUI_HUB_HOMES": str(folder / "homes"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        *(sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)),
        f"--JupyterHub.hub_bind_url=http://127.0.0.1:{hub_port}",
        f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{api_port}",
    ]
    log = (folder / "hub.log").open("w")
    process = subprocess.Popen(command, cwd=folder, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while "JupyterHub is now running" not in (folder / "hub.log").read_text():
            assert process.poll() is None, (folder / "hub.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the hub never started: " + (folder / "hub.log").read_text()[-3000:]
            time.sleep(0.3)
        yield {"url": f"http://127.0.0.1:{port}", "folder": folder, "log": folder / "hub.log"}
    finally:
        process.send_signal(signal.SIGINT)  # the hub stops its users' servers, and they their rnn-tui
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


# Records what JupyterLab's terminals receive (["stdout", text] messages) and what their pages send (keys, sizes).
RECORD_LAB_TERMINAL = """
window.__lab_terminal = ""; window.__lab_sent = [];
const LabWebSocket = window.WebSocket;
window.WebSocket = class extends LabWebSocket {
  constructor(...args) {
    super(...args);
    if (String(args[0]).includes("/terminals/websocket/")) {
      this.addEventListener("message", (event) => {
        try { const m = JSON.parse(event.data); if (m[0] === "stdout") window.__lab_terminal += m[1]; } catch (e) {}
      });
      const send = this.send.bind(this);
      this.send = (data) => { window.__lab_sent.push(String(data)); return send(data); };
    }
  }
};
"""


@pytest.fixture(scope="module")
def lab(hub: dict[str, Any]) -> Iterator[object]:
    """A logged-in browser at the user's JupyterLab."""
    from test_serve_browser import CHROMIUM, CHROMIUM_FLAGS, RECORD_TERMINAL, playwright_api

    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1200, "height": 800}, accept_downloads=True)
        context.add_init_script(RECORD_TERMINAL)  # rnn-tui's page: its terminal's bytes
        context.add_init_script(RECORD_LAB_TERMINAL)
        page = context.new_page()
        page.goto(hub["url"] + "/hub/login")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", "any")
        page.click("[type=submit]")
        page.wait_for_url(re.compile(rf".*/user/{USER}/lab.*"), timeout=120_000)
        page.locator(".jp-LauncherCard").first.wait_for(timeout=120_000)
        try:
            yield page
        finally:
            browser.close()


@needs_hub
def test_a_student_clicks_rnn_tui_in_the_launcher_and_gets_the_app_behind_the_login(
    hub: dict[str, Any], lab: Any
) -> None:
    from test_serve_browser import ARTIFACTS, screen_text, wait_until

    context = lab.context
    card = lab.locator(".jp-LauncherCard", has_text="rnn-tui")
    icon = card.locator("img")  # the package's own icon, served by jupyter-server-proxy
    wait_until(lambda: icon.evaluate("img => img.complete && img.naturalWidth > 0"), "the launcher's rnn-tui icon", 30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lab.screenshot(path=str(ARTIFACTS / "jupyterlab-launcher.png"))
    with context.expect_page(timeout=60_000) as opened:
        card.click()
    app = opened.value
    app.wait_for_load_state()
    assert app.url.startswith(f"{hub['url']}/user/{USER}/rnn-tui/")
    try:
        wait_until(lambda: "Status" in screen_text(app), "the app's Status panel", 180)
        wait_until(lambda: re.search(r"epoch \d+/\d+", screen_text(app)), "training's first epoch", 180)
        app.click("#terminal")
        shown = len(screen_text(app))
        app.keyboard.press("F5")  # pause: a key reaches the app through hub, proxy and socket
        wait_until(lambda: "paused" in screen_text(app)[shown:], "the app to say it paused", 60)
        # A download, under the prefix: the checkpoint, saved in the session and fetched by the browser.
        app.keyboard.press("Control+s")
        wait_until(lambda: "Save a checkpoint" in screen_text(app), "the save dialog", 60)
        with app.expect_download(timeout=120_000) as download:
            app.keyboard.press("Enter")
        assert download.value.suggested_filename == "rnn-tui.ckpt"
        assert download.value.url.startswith(f"{hub['url']}/user/{USER}/rnn-tui/download/")
        saved = Path(download.value.path())
        assert zipfile.is_zipfile(saved) and saved.stat().st_size > 10_000  # torch.save's zip, whole
    except AssertionError:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        app.screenshot(path=str(ARTIFACTS / "jupyterhub-failed.png"))
        raise
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    app.screenshot(path=str(ARTIFACTS / "jupyterhub-app.png"))
    app.close()
    log = hub["log"].read_text()
    assert "session 1 joined" in log and "Traceback" not in log


@needs_hub
def test_rnn_tui_in_a_jupyterlab_terminal_keys_colours_cjk_and_a_resize(hub: dict[str, Any], lab: Any) -> None:
    """The app as a student starts it in JupyterLab's terminal (xterm.js behind terminado): F-keys and ctrl-keys
    reach it, it draws in 24-bit colour (COLORTERM from the hub's config), its Samples panel's lyrics are drawn
    glyphs, and it follows the window's size (terminado exports COLUMNS and LINES: tui.main drops them)."""
    from test_serve_browser import ANSI, ARTIFACTS, CJK, HAS_GLYPHS, wait_until

    def text() -> str:
        return ANSI.sub("", lab.evaluate("window.__lab_terminal"))

    def raw() -> str:
        return str(lab.evaluate("window.__lab_terminal"))

    lab.set_viewport_size({"width": 1200, "height": 800})
    lab.locator(".jp-LauncherCard", has_text="Terminal").first.click()
    wait_until(lambda: re.search(r"[$#] $", text()), "the shell's prompt", 60)
    lab.locator(".jp-Terminal .xterm").first.click()
    rnn_tui = Path(sys.executable).parent / "rnn-tui"  # (root's login shell resets PATH)
    lab.keyboard.type(f"{rnn_tui} --hidden 64 --epochs 1000 --pred-period 2 --seed 0\n")
    try:
        wait_until(lambda: re.search(r"epoch \d+, perplexity", text()), "the Samples panel's first lyrics", 180)
        assert re.search(r"\x1b\[[0-9;]*38;2;\d+;\d+;\d+", raw()), "no 24-bit colour in the app's output"
        found = re.search(r"epoch \d+, perplexity", text())
        assert found is not None
        samples = text()[found.start() :]
        chars = sorted(set(CJK.findall(samples)))[:40]
        assert len(chars) >= 3, samples[:500]
        drawn = lab.evaluate(HAS_GLYPHS, chars)
        assert drawn["boxesAlike"] and drawn["latinDrawn"], f"the glyph check itself does not work: {drawn}"
        missing = [c for c, ok in zip(chars, drawn["glyphs"], strict=True) if not ok]
        assert not missing, f"drawn as empty boxes with {drawn['family']}: {''.join(missing)}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        lab.screenshot(path=str(ARTIFACTS / "jupyterlab-terminal.png"))

        shown = len(text())
        lab.keyboard.press("F5")  # an F-key
        wait_until(lambda: "paused" in text()[shown:], "F5 to pause the app", 60)
        shown = len(text())
        lab.keyboard.press("Control+s")  # a ctrl-key (JupyterLab's own save does not take it from the terminal)
        wait_until(lambda: "Save a checkpoint" in text()[shown:], "ctrl+s to open the save dialog", 60)
        lab.keyboard.press("Escape")

        # A smaller window: the app learns the new size (its too-small notice names it), then the old one back.
        lab.set_viewport_size({"width": 800, "height": 600})
        wait_until(lambda: '"set_size",' in lab.evaluate("window.__lab_sent.join()"), "the terminal's size", 20)

        def last_size() -> tuple[int, int]:
            sizes = [json.loads(m) for m in lab.evaluate("window.__lab_sent") if m.startswith('["set_size"')]
            return sizes[-1][2], sizes[-1][1]  # columns, rows

        wait_until(lambda: last_size()[0] < 80, "the terminal to shrink", 20)
        wait_until(lambda: "The terminal is {}×{}".format(*last_size()) in text(), "the app to follow the resize", 60)
        lab.screenshot(path=str(ARTIFACTS / "jupyterlab-terminal-small.png"))
        shown = len(text())
        lab.set_viewport_size({"width": 1200, "height": 800})
        wait_until(lambda: "Status" in text()[shown:], "the app drawn whole again", 60)
        lab.keyboard.press("Control+q")
        wait_until(lambda: re.search(r"[$#] $", text()), "the shell's prompt after ctrl+q", 60)
    except AssertionError:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        lab.screenshot(path=str(ARTIFACTS / "jupyterlab-terminal-failed.png"))
        raise
