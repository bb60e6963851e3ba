"""A hostile visitor of `rnn-tui serve` typing paths: the real app in served mode (Textual's pilot, real corpus and
torch), every escape tried through ctrl+s, ctrl+o and F10's CSV export, against a canary tree.

The canary tree: files outside the session (a sibling folder, a symlink's target, the places `~`, `~root`,
`~systemd-network/tmp` and `/tmp` name) hashed with their mtimes before and after, and the exact places each escape
would have written checked to be absent. Every refusal is the one line STAY_INSIDE (or says the name is too long):
it never says what exists elsewhere. The server side (websockets, processes): tests/test_serve_lifecycle.py.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import json
import os
import pwd
import re
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from conftest import BOOK_CORPUS
from pilot_helpers import wait_for
from test_serve_lifecycle import Served, async_wait_until, serve  # noqa: F401 (serve: the fixture, used by name)
from textual.widgets import Input, Static

from engine.outputs import OutputError, check_output_target
from tui.cli import app_options, parse
from tui.served import STAY_INSIDE, OutsideSession, ServedMode, confine

LONG = "x" * 300 + ".ckpt"


def home_of(user: str) -> Path | None:
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        return None


def escapes(session: Path, canary: Path, suffix: str) -> dict[str, list[Path]]:
    """Typed text → the places outside the session it would reach if expanded or followed."""
    places: dict[str, list[Path]] = {
        f"~/x{suffix}": [Path.home() / f"x{suffix}"],
        f"~root/x{suffix}": [home_of("root") or Path("/root"), Path(f"/root/x{suffix}")],
        f"../../x{suffix}": [session.parent.parent / f"x{suffix}"],
        f"../canary/x{suffix}": [canary / f"x{suffix}"],
        f"/tmp/x{suffix}": [Path(f"/tmp/x{suffix}")],
        f"{canary}/x{suffix}": [canary / f"x{suffix}"],
        f"door/x{suffix}": [canary / f"x{suffix}"],  # a symlink in the session pointing out
        f"dangling{suffix}": [canary / "not-yet" / f"x{suffix}"],
        f"a/../~/../../x{suffix}": [session.parent / f"x{suffix}"],
    }
    network = home_of("systemd-network")
    if network is not None:
        places[f"~systemd-network/tmp/x{suffix}"] = [network / "tmp" / f"x{suffix}"]
    return places


def snapshot(roots: list[Path]) -> dict[str, tuple[str, int]]:
    """Every file under roots (not following symlinks): its sha256 and mtime in ns."""
    found: dict[str, tuple[str, int]] = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in files + dirs:
                path = Path(folder) / name
                stat = path.lstat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
                found[str(path)] = (digest, stat.st_mtime_ns)
    return found


@pytest.fixture
def room(tmp_path: Path) -> tuple[ServedMode, Path]:
    """A session folder beside a canary folder, as the server lays them out, with symlinks pointing out."""
    work = tmp_path / "work"
    session = (work / "session-1").resolve()
    session.mkdir(parents=True)
    (work / "session-2").mkdir()
    (work / "session-2" / "theirs.ckpt").write_bytes(b"another student's checkpoint")
    canary = work / "canary"
    canary.mkdir()
    (canary / "precious.txt").write_text("do not touch", encoding="utf-8")
    (canary / "x.ckpt").write_text("22-byte canary file..\n", encoding="utf-8")
    (session / "door").symlink_to(canary)
    (session / "dangling.ckpt").symlink_to(canary / "not-yet" / "x.ckpt")
    (session / "dangling.csv").symlink_to(canary / "not-yet" / "x.csv")
    return ServedMode(session, (str(BOOK_CORPUS),), 0.0), canary


# ----- the policy alone -----


@pytest.mark.parametrize("suffix", [".ckpt", ".csv"])
def test_every_escape_is_refused_with_the_same_line(room: tuple[ServedMode, Path], suffix: str) -> None:
    mode, canary = room
    for typed in escapes(mode.session_dir, canary, suffix):
        if typed.startswith("a/../~"):
            continue  # stays inside: below
        with pytest.raises(OutsideSession) as refused:
            mode.confine(typed)
        assert str(refused.value) == STAY_INSIDE, typed


def test_a_tilde_inside_the_session_stays_a_literal_name(room: tuple[ServedMode, Path]) -> None:
    mode, _ = room
    inside = mode.confine("a/../~/x.ckpt")  # `~` as a folder name, not at the start: a plain name in the session
    assert inside == mode.session_dir / "~" / "x.ckpt" and inside.is_absolute()
    # The output check after confinement does not expand it: the path it returns is the same, inside.
    assert check_output_target(str(inside), "checkpoint") == inside
    with pytest.raises(OutsideSession, match="files stay in this session"):
        confine("~", mode.session_dir)


def test_long_names_and_nul_are_one_line(room: tuple[ServedMode, Path]) -> None:
    mode, _ = room
    for typed in (LONG, "a/" * 2100 + "x", "a\0b.ckpt"):
        with pytest.raises(OutsideSession) as refused:
            mode.confine(typed)
        assert "\n" not in str(refused.value) and str(mode.session_dir) not in str(refused.value)
    assert mode.confine("é" * 126 + ".ck") == mode.session_dir / ("é" * 126 + ".ck")  # 255 bytes: the most
    with pytest.raises(OutsideSession, match="too long"):
        mode.confine("é" * 128)  # 128 characters, 256 bytes: over NAME_MAX


def test_the_output_check_refuses_a_long_name_in_one_line_in_a_terminal(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as refused:
        check_output_target(str(tmp_path / LONG), "checkpoint")
    assert "too long" in str(refused.value) and "\n" not in str(refused.value)


# ----- the real app, served -----


async def test_a_hostile_visitor_writes_nothing_outside_and_learns_nothing(
    room: tuple[ServedMode, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.app import RnnTuiApp
    from tui.app.screens import LoadScreen, SaveScreen
    from tui.app.screens.runs_compared import RunsScreen

    mode, canary = room
    for name, value in mode.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(mode.session_dir)  # as the server starts it
    session = mode.session_dir
    watched = [session.parent / "session-2", canary]
    before = snapshot(watched)
    targets = {p for suffix in (".ckpt", ".csv") for ps in escapes(session, canary, suffix).values() for p in ps}
    existed = {p for p in targets if p.exists()}

    args = parse(["--hidden", "16", "--threads", "1", "--seed", "0", "--epochs", "1", "--corpus", str(BOOK_CORPUS)])
    app = RnnTuiApp(app_options(args))
    async with app.run_test(size=(110, 32)) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "one epoch")

        async def typed_into(field: str, text: str) -> None:
            app.screen.query_one(field, Input).value = text
            app.screen.query_one(field, Input).focus()
            await pilot.press("enter")

        def error_text() -> str:
            return str(app.screen.query_one(".path-error", Static).render())

        await pilot.press("ctrl+s")
        for typed in [*escapes(session, canary, ".ckpt"), LONG, "a\0b.ckpt"]:
            if typed.startswith("a/../~"):
                continue
            await typed_into("#path", typed)
            assert isinstance(app.screen, SaveScreen), typed  # refused: the dialog stays, saying why in one line
            said = error_text()
            assert said == STAY_INSIDE or "too long" in said or "NUL" in said, (typed, said)
        await pilot.press("escape")

        await pilot.press("ctrl+o")
        for typed in escapes(session, canary, ".ckpt"):
            if typed.startswith("a/../~"):
                continue
            await typed_into("#path", typed)
            assert isinstance(app.screen, LoadScreen), typed
            assert error_text() == STAY_INSIDE, typed
        await pilot.press("escape")

        await pilot.press("f10")
        assert isinstance(app.screen, RunsScreen)
        for typed in [*escapes(session, canary, ".csv"), LONG.replace(".ckpt", ".csv")]:
            if typed.startswith("a/../~"):
                continue
            await typed_into("#runs-csv", typed)
            assert app.screen.exported is None, typed
            assert app.screen.error == STAY_INSIDE or "too long" in (app.screen.error or ""), typed
        await pilot.press("escape")

        # Markup in a typed name is a name, not markup: saved inside the session, said plainly, nothing raised.
        await pilot.press("ctrl+s")
        await typed_into("#path", "[/]x.ckpt")
        await wait_for(pilot, (session / "[" / "]x.ckpt").is_file, "the checkpoint named with brackets")
        await wait_for(pilot, lambda: any("]x.ckpt" in str(n.message) for n in app._notifications), "its note")
        note = next(str(n.message) for n in app._notifications if "]x.ckpt" in str(n.message))
        assert note.startswith("saved [/]x.ckpt (") and str(session) not in note  # the visitor's name, no server path
        await pilot.press("ctrl+s")  # the dialog offers the name used last, as the visitor typed it
        assert app.screen.query_one("#path", Input).value == "[/]x.ckpt"
        await pilot.press("escape")
        await pilot.press("f10")
        await typed_into("#runs-csv", "[b]runs.csv")
        assert app.screen.error is None and (session / "[b]runs.csv").is_file()
        await pilot.press("escape")
        assert app.is_running

    assert snapshot(watched) == before
    assert {p for p in targets if p.exists()} == existed
    leftovers = {p.name for p in session.parent.iterdir()}
    assert leftovers == {"session-1", "session-2", "canary"}


# ----- a seat's limits: disk and memory -----


async def test_a_seat_has_a_disk_quota_and_a_memory_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch  # noqa: F401 (loaded before the share is measured: the app loads it too)

    from engine.limits import resident_memory
    from tui.app import RnnTuiApp

    session = (tmp_path / "session-1").resolve()
    session.mkdir()
    # Room for one small checkpoint (a few hundred KiB, estimated at 1.4 MiB), not for two; memory: 400 MiB beyond
    # what this test process holds with torch (hidden 4096 needs about 900 MiB).
    share = resident_memory() + 400 * 2**20
    mode = ServedMode(session, (str(BOOK_CORPUS),), 0.0, seat_memory=share, disk_quota=3 * 2**19)
    for name, value in mode.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(session)
    args = parse(["--hidden", "16", "--threads", "1", "--seed", "0", "--epochs", "1", "--corpus", str(BOOK_CORPUS)])
    app = RnnTuiApp(app_options(args))
    async with app.run_test(size=(110, 32)) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "one epoch")

        async def save_as(name: str) -> None:
            await pilot.press("ctrl+s")
            app.screen.query_one("#path", Input).value = name
            await pilot.press("enter")

        def notes() -> list[str]:
            return [str(n.message) for n in app._notifications]

        await save_as("one.ckpt")
        await wait_for(pilot, (session / "one.ckpt").is_file, "the first checkpoint")
        await save_as("two.ckpt")
        await wait_for(pilot, lambda: any("may take 1.5 MiB" in n for n in notes()), "the quota's refusal")
        refusal = next(n for n in notes() if "may take 1.5 MiB" in n)
        assert "\n" not in refusal and "nothing was saved" in refusal and not (session / "two.ckpt").exists()
        await save_as("one.ckpt")  # over its own earlier file: its bytes come back
        await wait_for(pilot, lambda: sum("saved one.ckpt" in n for n in notes()) == 2, "the second save of one.ckpt")

        # A model past the seat's memory is refused in the form, with the numbers.
        assert app.run_control.config is not None
        app.main.settings.load(app.run_control.config.with_changes(hidden=4096))
        await pilot.press("f7")
        await wait_for(pilot, lambda: any("is available" in n for n in notes()), "the memory refusal")
        said = next(n for n in notes() if "is available" in n)
        assert "hidden" in said and "needs about" in said
        assert app.run_control.config is not None and app.run_control.config.hidden == 16


async def test_typed_markup_is_text_everywhere_in_a_terminal_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not served: a checkpoint named `[/]x.ckpt` (a MarkupError in the notification), a prefix and a setting
    holding markup are shown as typed, and nothing raises."""
    from tui.app import RnnTuiApp

    for name in ServedMode(tmp_path).environment():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    args = parse(["--hidden", "16", "--threads", "1", "--seed", "0", "--epochs", "1", "--corpus", str(BOOK_CORPUS)])
    app = RnnTuiApp(app_options(args))
    async with app.run_test(size=(110, 32)) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "one epoch")
        await pilot.press("ctrl+s")
        app.screen.query_one("#path", Input).value = "[/]x.ckpt"
        await pilot.press("enter")
        await wait_for(pilot, (tmp_path / "[" / "]x.ckpt").is_file, "the checkpoint named with brackets")
        await wait_for(pilot, lambda: any("[/]x.ckpt" in str(n.message) for n in app._notifications), "its note")

        box = app.main.generate_box
        await pilot.press("f2")
        app.query_one("#prefix", Input).value = "[/][b]"
        await pilot.press("enter")
        await wait_for(pilot, lambda: box.last_text is not None or box.last_error is not None, "the prefix's answer")
        assert "'[', '/', ']'" in str(box.output.render())  # said as text (they are not in the lyrics' vocabulary)

        app.main.settings.widget("lr").value = "[/]"
        await pilot.press("f7")
        await wait_for(pilot, lambda: "[/]" in str(app.main.settings.errors), "the setting's error")
        assert app.is_running


# ----- the same escapes typed through a real server's websocket, as a visitor's terminal sends them -----

ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-Z\\-_]")


async def test_escapes_typed_through_a_real_servers_websocket_write_nothing_outside(
    serve: Callable[..., Served],  # noqa: F811 (the fixture imported above, by its name)
    tmp_path: Path,
) -> None:
    served = serve("--max-sessions", "1", "--epochs", "1")
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "precious.txt").write_text("do not touch", encoding="utf-8")
    unique = f"rnn-tui-canary-{os.getpid()}"
    targets = [Path.home() / "x.ckpt", Path("/root/x.ckpt"), Path(f"/tmp/{unique}.ckpt"), canary / "x.ckpt"]
    existed = {p for p in targets if p.exists()}
    before = snapshot([canary])
    headers = {"Origin": served.url}
    async with aiohttp.ClientSession() as client:
        ws = await client.ws_connect(served.url + "/ws", params={"width": "110", "height": "32"}, headers=headers)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        screen = [""]

        async def read() -> None:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    screen[0] += ANSI.sub("", decoder.decode(message.data))

        reader = asyncio.create_task(read())

        async def shows(text: str, since: int = 0, timeout: float = 60) -> None:
            deadline = time.monotonic() + timeout
            while not re.search(text, screen[0][since:]):
                assert time.monotonic() < deadline, f"the screen never showed {text!r}: {screen[0][-3000:]!r}"
                await asyncio.sleep(0.1)

        async def keys(text: str) -> None:
            await ws.send_str(json.dumps(["stdin", text]))

        await shows(r"\d\.\d\d s/epoch", timeout=90)  # trained an epoch: ctrl+s has weights to save
        await ws.send_str(json.dumps(["focus"]))  # as the page says once the terminal is clicked
        (session_dir,) = served.session_dirs()
        (session_dir / "door").symlink_to(canary)  # a symlink in the session leading out
        escapes = ["~/x.ckpt", "~root/x.ckpt", f"/tmp/{unique}.ckpt", "../../x.ckpt", "door/x.ckpt", "x" * 300]
        for typed in escapes:
            await keys("\x13")  # ctrl+s
            await shows("Save a checkpoint")
            mark = len(screen[0])
            await keys("\x15" + typed + "\r")  # ctrl+u clears the field; the name; Enter
            await shows("too long" if typed.startswith("xxx") else "stay in this session", since=mark)
            await keys("\x1b")  # Esc closes the dialog
            await asyncio.sleep(0.3)
            screen[0] = ""
        reader.cancel()
        await ws.close()
    assert snapshot([canary]) == before
    assert {p for p in targets if p.exists()} == existed
    await async_wait_until(lambda: bool(served.events("left")), "the session's end")
    assert "Traceback" not in served.stderr.read_text()
