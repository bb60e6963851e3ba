"""Served mode (`rnn-tui serve`) without a browser: the path policy, the app's served behaviour, the command line,
and that the server listens on this machine only by default. The browser itself: tests/test_serve_browser.py."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import BOOK_CORPUS
from pilot_helpers import wait_for
from textual.widgets import Input, Static

from tui.cli import app_options, parse
from tui.serve.run import host_warning
from tui.serve.settings import settings_from_args, train_flags
from tui.served import MAX_DEPTH, SERVED_NOTE, OutsideSession, ServedMode, remove_tree, user_path

# ----- the policy -----


@pytest.fixture
def mode(tmp_path: Path) -> ServedMode:
    session = tmp_path / "work" / "session-1"
    session.mkdir(parents=True)
    return ServedMode(session.resolve(), (str(BOOK_CORPUS),), 60.0)


def test_a_file_name_stays_in_the_session(mode: ServedMode) -> None:
    inside = mode.session_dir
    assert mode.confine("rnn-tui.ckpt") == inside / "rnn-tui.ckpt"  # absolute: nothing later expands it again
    assert mode.confine("  runs/a.csv ") == inside / "runs/a.csv"
    assert mode.confine("runs/../b.ckpt") == inside / "b.ckpt"  # `..` that stays inside is folded
    assert mode.confine(str(inside / "c.ckpt")) == inside / "c.ckpt"  # its own absolute path is inside


@pytest.mark.parametrize(
    "text",
    ["../escaped.ckpt", "a/../../escaped.ckpt", "/etc/passwd", "/tmp/x.ckpt", "~/x.ckpt/../../../../etc/passwd", "."],
)
def test_a_path_outside_the_session_is_refused(mode: ServedMode, text: str) -> None:
    with pytest.raises(OutsideSession, match="files stay in this session"):
        mode.confine(text)


def test_a_sibling_session_with_a_common_prefix_is_outside(mode: ServedMode) -> None:
    sibling = mode.session_dir.parent / (mode.session_dir.name + "0")  # string prefix, not a parent
    with pytest.raises(OutsideSession):
        mode.confine(str(sibling / "theirs.ckpt"))


def test_symlinks_leading_out_are_refused(mode: ServedMode, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (mode.session_dir / "door").symlink_to(outside)
    (mode.session_dir / "dangling.ckpt").symlink_to(tmp_path / "not-yet" / "x.ckpt")
    for text in ("door/x.ckpt", "dangling.ckpt"):
        with pytest.raises(OutsideSession):
            mode.confine(text)
    (mode.session_dir / "inner").mkdir()
    (mode.session_dir / "alias").symlink_to(mode.session_dir / "inner")
    assert mode.confine("alias/x.ckpt") == mode.session_dir / "inner/x.ckpt"  # a link that stays inside is fine


def test_empty_and_nul_names_are_refused(mode: ServedMode) -> None:
    for text in ("", "   ", "a\0b"):
        with pytest.raises(OutsideSession):
            mode.confine(text)


def test_only_the_servers_corpus_is_allowed(mode: ServedMode, tmp_path: Path) -> None:
    mode.check_corpus(str(BOOK_CORPUS))
    mode.check_corpus(os.path.relpath(BOOK_CORPUS))  # the same file, however it is written
    other = tmp_path / "other.txt"
    other.write_text("你好" * 100, encoding="utf-8")
    for corpus in (str(other), "/etc/passwd", "https://example.com/corpus.zip"):
        with pytest.raises(OutsideSession, match=f"set by the server \\({BOOK_CORPUS.name}\\)"):
            mode.check_corpus(corpus)
    # Blank: the preset's own (the server's, by $RNN_TUI_CORPUS; d2l-en's shipped Time Machine), and that one.
    from engine.data.corpus import TIME_MACHINE_PATH

    for blank_or_shipped in (None, "", str(TIME_MACHINE_PATH)):
        mode.check_corpus(blank_or_shipped)


def test_environment_round_trip_and_terminal_mode(mode: ServedMode, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServedMode.from_environment(mode.environment()) == mode
    assert ServedMode.from_environment({}) is None
    for name in mode.environment():
        monkeypatch.delenv(name, raising=False)
    assert user_path(" /etc/anything ") == "/etc/anything"  # in a terminal, the user's paths are the user's
    monkeypatch.setenv("RNN_TUI_SERVED_DIR", str(mode.session_dir))
    with pytest.raises(OutsideSession):
        user_path("/etc/anything")


# ----- the app in served mode (Textual's pilot, real corpus and torch) -----


async def test_served_app_confines_saves_locks_the_corpus_and_pauses_when_idle(
    mode: ServedMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.app import RnnTuiApp
    from tui.app.screens import SaveScreen

    idle = ServedMode(mode.session_dir, mode.corpora, idle_seconds=1.0)
    for name, value in idle.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(mode.session_dir)  # as the server starts it
    args = parse(["--hidden", "32", "--threads", "1", "--seed", "0", "--epochs", "500", "--corpus", str(BOOK_CORPUS)])
    app = RnnTuiApp(app_options(args))
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.query_one("#status").border_subtitle == SERVED_NOTE
        # Nobody touches it: training starts, then pauses for the idle limit.
        await wait_for(pilot, lambda: app.run_control.status.state == "paused", "the idle pause")
        assert "no input" in app.run_control.status.message and app.run_control.status.epoch >= 0
        assert app.main.settings.widget("corpus").disabled

        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SaveScreen)
        for outside in ("../escaped.ckpt", str(mode.session_dir.parent / "escaped.ckpt")):
            app.screen.query_one("#path", Input).value = outside
            await pilot.press("enter")
            assert isinstance(app.screen, SaveScreen)  # refused: the dialog stays, saying why
            assert "files stay in this session" in str(app.screen.query_one(".path-error", Static).render())
        app.screen.query_one("#path", Input).value = "mine.ckpt"
        await pilot.press("enter")
        await wait_for(pilot, (mode.session_dir / "mine.ckpt").exists, "the checkpoint in the session")
        assert not (mode.session_dir.parent / "escaped.ckpt").exists()

        # The student is back: F5 resumes and the idle note goes. (A longer limit from here: on a busy machine the
        # pilot's key can take more than a second to go through, and the one-second limit would pause again.)
        app.served = ServedMode(mode.session_dir, mode.corpora, idle_seconds=3600)
        await pilot.press("f5")
        assert app.run_control.status.state == "running" and not app.run_control.status.message


async def test_a_served_session_asks_before_leaving_helps_with_what_works_and_runs_the_shipped_preset(
    mode: ServedMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.app import RnnTuiApp
    from tui.app.screens import HelpScreen
    from tui.app.screens.served_quit import LeaveScreen

    for name, value in mode.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RNN_TUI_CORPUS", str(BOOK_CORPUS))  # as the server sets it; no --corpus on the line
    monkeypatch.chdir(mode.session_dir)
    app = RnnTuiApp(app_options(parse(["--hidden", "16", "--threads", "1", "--seed", "0", "--epochs", "1"])))
    async with app.run_test(size=(110, 32)) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "one epoch on the server's corpus")
        form = app.main.settings
        assert form.widget("corpus").value == ""  # the server's path is not shown: blank, the preset's own
        vocab = app.run_control.vocab
        assert vocab is not None and len(vocab) > 1000  # the lyrics, found by $RNN_TUI_CORPUS

        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        assert [key for key, _, _ in app.screen.keys if key == "f12"] == []  # a served session refuses sweeps
        await pilot.press("escape")

        await pilot.press("ctrl+q")  # asks first: the session's files go with it
        assert isinstance(app.screen, LeaveScreen) and app.is_running
        assert "Download the weights" in str(app.screen.query_one(".dialog-text", Static).render())
        await pilot.press("escape")
        assert not isinstance(app.screen, LeaveScreen) and app.is_running

        # The English edition's preset trains on the Time Machine shipped with rnn-tui (it was refused as "the
        # corpus is set by the server").
        form.widget("preset").value = "d2l-en"
        await pilot.pause()
        form.widget("epochs").value = "1"
        await pilot.press("f7")
        if not isinstance(app.screen, type(app.main)):
            await pilot.press("enter")  # confirm: a new preset starts from scratch
        await wait_for(
            pilot,
            lambda: (
                app.run_control.vocab is not None
                and len(app.run_control.vocab) < 40
                and app.run_control.status.state == "finished"
            ),
            "a run on The Time Machine",
        )
        await pilot.press("ctrl+q")
        await pilot.press("ctrl+q")  # twice: leave
        await wait_for(pilot, lambda: not app.is_running, "the app to leave")


async def test_a_seat_idle_past_the_release_limit_saves_and_goes_back(
    mode: ServedMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from tui.app import RnnTuiApp
    from tui.served import RELEASED_EXIT

    for name, value in replace(mode, idle_seconds=0.0, release_seconds=3600.0).environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(mode.session_dir)
    args = parse(["--hidden", "16", "--threads", "1", "--seed", "0", "--epochs", "1", "--corpus", str(BOOK_CORPUS)])
    app = RnnTuiApp(app_options(args))
    async with app.run_test(size=(110, 32)) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "one epoch")
        assert app.served is not None
        app.served = replace(app.served, release_seconds=1.0)  # nobody has typed for longer than that
        await wait_for(pilot, lambda: not app.is_running, "the seat's release", timeout=30)
    assert app.return_value == RELEASED_EXIT
    assert (mode.session_dir / "rnn-tui.ckpt").is_file()  # saved (and, in a browser, offered as a download)


# ----- the command line and the server -----


def serve_args(*flags: str) -> argparse.Namespace:
    return parse(["serve", "--corpus", str(BOOK_CORPUS), *flags])


def test_every_train_flag_reaches_each_session(tmp_path: Path) -> None:
    args = serve_args("--epochs", "7", "--lr", "0.01", "--prefix", "分开", "--prefix", "我", "--paused", "--cell=gru")
    args.workdir = str(tmp_path / "work")
    settings = settings_from_args(args)
    flags = settings.app_flags
    assert "--corpus" not in flags and settings.corpora == (str(BOOK_CORPUS.resolve()),)  # by $RNN_TUI_CORPUS
    assert flags[flags.index("--epochs") + 1] == "7" and flags[flags.index("--lr") + 1] == "0.01"
    assert flags[flags.index("--cell") + 1] == "gru" and "--paused" in flags
    assert [flags[i + 1] for i, f in enumerate(flags) if f == "--prefix"] == ["分开", "我"]
    assert "--host" not in flags and "--max-sessions" not in flags  # the server's own flags stay with it
    assert settings.threads >= 1 and (tmp_path / "work").is_dir()
    reparsed = parse(flags)  # the session's command line is one the app accepts, meaning the same
    assert (reparsed.epochs, reparsed.cell, reparsed.prefixes, reparsed.paused) == (7, "gru", ["分开", "我"], True)
    assert train_flags(parse(["serve"])) == []


def test_sessions_share_the_cores(tmp_path: Path) -> None:
    args = serve_args("--max-sessions", str(2 * (os.cpu_count() or 1)), "--workdir", str(tmp_path))
    assert settings_from_args(args).threads == 1
    args = serve_args("--max-sessions", "1", "--workdir", str(tmp_path))
    assert settings_from_args(args).threads == (os.cpu_count() or 1)


def test_seats_are_shared_out_from_cores_and_memory(tmp_path: Path) -> None:
    from tui.serve.settings import MIB, auto_sessions

    assert auto_sessions(16, 9 * 2**30) == 8  # memory decides: a GiB a seat beyond the server's one
    assert auto_sessions(2, 64 * 2**30) == 2  # cores decide
    assert auto_sessions(4, 2**29) == 1  # never none
    settings = settings_from_args(serve_args("--max-sessions", "auto", "--workdir", str(tmp_path)))
    assert 1 <= settings.max_sessions <= (os.cpu_count() or 1)
    assert settings.seat_memory >= 512 * MIB and 16 * MIB <= settings.seat_disk <= 1024 * MIB
    flags = ("--max-sessions", "3", "--seat-memory", "700", "--seat-disk", "64", "--workdir", str(tmp_path))
    settings = settings_from_args(serve_args(*flags))
    assert (settings.max_sessions, settings.seat_memory, settings.seat_disk) == (3, 700 * MIB, 64 * MIB)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-sessions", "0"], "max-sessions must be a whole number ≥ 1 or auto, got 0"),
        (["--max-sessions", "many"], "--max-sessions: invalid"),
        (["--seat-disk", "0"], "seat-disk must be a whole number of MiB ≥ 1, got 0"),
        (["--port", "70000"], "port must be between 1 and 65535"),
        (["--idle-minutes", "-1"], "idle-minutes must be a number ≥ 0"),
        (["--reload-seconds", "-1"], "reload-seconds must be a number ≥ 0"),
        (["--token", "1234"], "--token must be at least 8 characters, each a letter (a-z, A-Z), a digit or - _"),
        (["--token", "pear tree!"], "--token must be at least 8 characters"),
        (["--public-url", "example.com"], "public-url must start with http://, https:// or / (a path)"),
        (["--public-url", "/user/ada/rnn-tui/"], "--public-url as a path alone (behind JupyterHub's proxy) needs"),
        (["--unix-socket", "/proc/no-such-folder/s"], "cannot listen on /proc/no-such-folder/s: no such folder"),
        (["--save", "/tmp/all.ckpt"], "--save in serve is a file name inside each session's directory"),
        (["--metrics", "../m.jsonl"], "--metrics in serve is a file name inside each session's directory"),
        (["--corpus", "/nonexistent/corpus.zip"], "corpus not found: /nonexistent/corpus.zip"),
        (["--lr", "-1"], "lr"),
    ],
)
def test_bad_serve_flags_are_one_line_and_exit_2(flags: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tui.main", "serve", "--port", "1", *flags], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_binding_beyond_this_machine_warns() -> None:
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None
    warning = host_warning("0.0.0.0")
    assert warning is not None and "anyone who can reach this port can run training on this machine" in warning


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def listening_addresses(port: int) -> list[str]:
    """The local addresses of the sockets listening on port, from the kernel's own tables."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def start_server(port: int, *flags: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tui.main", "serve", "--port", str(port), "--corpus", str(BOOK_CORPUS), *flags]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not listening_addresses(port):
        assert server.poll() is None, server.communicate()[1]
        assert time.monotonic() < deadline, "the server never listened"
        time.sleep(0.1)
    return server


def page_urls(port: int, host_header: str) -> list[str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": host_header})
    with urllib.request.urlopen(request, timeout=10) as response:
        return re.findall(r"(?:https?|wss?)://[^\s\"')]+", response.read().decode())


def test_the_server_listens_on_127_0_0_1_only_by_default_and_its_page_asks_only_it(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(port)
    try:
        assert listening_addresses(port) == ["0100007F"]  # 127.0.0.1, and nothing else (no 0.0.0.0, no ::)
        urls = page_urls(port, f"127.0.0.1:{port}")
        # Every address in the page is this server's (textual-serve's own page asks a public font service).
        assert urls and all(url.split("://")[1].startswith(f"127.0.0.1:{port}/") for url in urls), urls
        assert f"ws://127.0.0.1:{port}/ws" in urls
        # The browser's own address is used (a server on 0.0.0.0 must not send the browser to 0.0.0.0).
        assert f"ws://localhost:{port}/ws" in page_urls(port, f"localhost:{port}")
        # Served on this machine only, another name is refused: a page whose name was made to point here (DNS
        # rebinding) would otherwise be this server's own page to the browser, and pass the Origin check.
        with pytest.raises(urllib.error.HTTPError, match="403"):
            page_urls(port, f"teacher.local:{port}")
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert f"open http://127.0.0.1:{port}" in out
    assert "warning" not in err and "Traceback" not in err


def test_behind_a_reverse_proxy_the_page_uses_the_public_url() -> None:
    port = free_port()
    server = start_server(port, "--public-url", "https://class.example.org/rnn/")
    try:
        urls = page_urls(port, f"127.0.0.1:{port}")
        assert "wss://class.example.org/rnn/ws" in urls
        assert "https://class.example.org/rnn/static/js/textual.js" in urls
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": f"127.0.0.1:{port}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert 'const basePath = "/rnn";' in response.read().decode()  # downloads under /rnn/download/…
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_a_taken_port_is_one_line_before_any_banner() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "tui.main", "serve", "--port", str(port), "--corpus", str(BOOK_CORPUS)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2 and result.stdout == ""  # no "open http://…" for a server that never was
    assert result.stderr == f"rnn-tui: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


# ----- bounded trees (issue 32, item 1) -----


def deep_tree(top: Path, depth: int, payload: bytes = b"x" * 100) -> None:
    """`depth` nested folders under top, a small file in each: made through open folders, as no path could name the
    deepest one (a path past PATH_MAX)."""
    folder = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=folder)
            with open(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=folder), "wb") as file:
                file.write(payload)
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = below
    finally:
        os.close(folder)


def test_a_typed_path_goes_a_few_folders_deep_at_most(mode: ServedMode) -> None:
    deepest = "d/" * MAX_DEPTH + "x.csv"
    assert mode.confine(deepest) == mode.session_dir.joinpath(*deepest.split("/"))
    for typed in ("d/" * (MAX_DEPTH + 1) + "x.csv", "d/" * 700 + "x.csv", "d/" * 1400 + "x.csv"):
        with pytest.raises(OutsideSession, match=f"at most {MAX_DEPTH} folders deep") as refused:
            mode.confine(typed)
        assert str(mode.session_dir) not in str(refused.value)


def test_the_quota_counts_folders_and_both_walks_take_any_depth(mode: ServedMode) -> None:
    deep_tree(mode.session_dir, 1500)  # os.walk and shutil.rmtree raised RecursionError at about 1,000
    used = mode.used_bytes()
    assert used >= 1500 * (4096 + 4096)  # each level: a folder's block and a file's block
    with pytest.raises(OutsideSession, match="may take"):
        ServedMode(mode.session_dir, disk_quota=used // 2).check_room(0)
    assert remove_tree(str(mode.session_dir)) and not mode.session_dir.exists()
    assert remove_tree(str(mode.session_dir))  # gone already: still True, nothing raised
