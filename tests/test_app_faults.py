"""The app's side of issue 13: consent before replacing a file that is not ours, no unsaved weights discarded without
a question, inline errors that follow the typing, settings that do nothing marked, prefixes that cannot be
sampled explained, and a terminal too small said so. Real app (Textual's pilot), real corpus, real torch."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from pilot_helpers import wait_for
from test_app_robust import dialog, make_app, press, state
from textual.widgets import Input

from engine import checkpoint as checkpoints
from tui.app import RnnTuiApp
from tui.app.screens import ConfirmScreen

SIZE = (100, 30)


def last_line_says(app: RnnTuiApp, needle: str) -> bool:
    return needle in app.main.samples.lines_written[-1]


async def test_unsaved_weights_and_files_not_ours_are_asked_about(tmp_path: Path, corpus_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    app = make_app("--epochs", "1", "--hidden", "16")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "the run to finish")
        await press(pilot, "f7")  # the trained weights are saved nowhere: asked first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the restart question")
        assert isinstance(app.screen, ConfirmScreen)
        assert "This run's weights (epoch 1) are discarded. They are not saved" in app.screen.question
        await press(pilot, "escape")
        run = app.run_control.current

        for target in (tmp_path, corpus_path):  # refused with one line: no dialog, nothing written
            await dialog(pilot, "ctrl+s", target)
            await press(pilot, "enter")
            needle = "is a directory" if target == tmp_path else "is the corpus being trained on"
            await wait_for(pilot, partial(last_line_says, app, needle), needle)
            assert not isinstance(app.screen, ConfirmScreen)

        await dialog(pilot, "ctrl+s", notes)
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the replace question")
        assert isinstance(app.screen, ConfirmScreen)
        assert (
            app.screen.question == f"{notes} exists and is not an rnn-tui checkpoint (a 9-byte text file). Replace it?"
        )
        await press(pilot, "escape")  # no: the notes stay
        await pilot.pause(0.2)
        assert notes.read_text() == "my notes\n"

        await dialog(pilot, "ctrl+s", notes)
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the replace question")
        await press(pilot, "enter")  # yes
        await wait_for(pilot, lambda: any("saved " in line for line in app.main.samples.lines_written), "the save")
        assert checkpoints.load(notes).epoch == 1

        await press(pilot, "f7")  # saved where they are now: nothing to lose, no question
        await wait_for(pilot, lambda: app.run_control.current is not run, "the restart")
        assert not isinstance(app.screen, ConfirmScreen)
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 1, "the new run training")


@pytest.mark.parametrize("trained", [False, True], ids=["at-the-first-frame", "after-training"])
def test_a_terminal_that_hangs_up_ends_the_app_and_keeps_the_weights(
    corpus_path: Path, tmp_path: Path, trained: bool
) -> None:
    """The terminal really closes (its master side goes, as when a terminal window or an SSH link closes): the
    kernel sends SIGHUP and every write fails. The app must still end (it hung in Textual's output queue), and
    weights trained and saved nowhere must be in the rescue file."""
    flags = ("--epochs", "3", "--seed", "0") if trained else ()
    pid, fd = app_in_a_pty(corpus_path, tmp_path, *flags)
    read_until(fd, b"finished" if trained else b"Perplexity")
    os.close(fd)  # the hang-up
    deadline = time.monotonic() + 20
    while (ended := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the app did not end after its terminal hung up")
        time.sleep(0.1)
    assert os.waitstatus_to_exitcode(ended[1]) == 128 + signal.SIGHUP
    rescued = list(tmp_path.glob("rnn-tui.rescued-*.ckpt"))
    if trained:
        assert len(rescued) == 1 and checkpoints.load(rescued[0]).epoch == 3
    else:
        assert rescued == []


async def test_a_signal_after_a_save_writes_no_rescue_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The weights ctrl+s saved are not written again when SIGTERM ends the app; exit 143."""
    monkeypatch.chdir(tmp_path)
    app = make_app("--epochs", "1", "--hidden", "16")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "the run to finish")
        await dialog(pilot, "ctrl+s", tmp_path / "kept.ckpt")
        await press(pilot, "enter")
        await wait_for(pilot, lambda: any("saved " in line for line in app.main.samples.lines_written), "the save")
        app._quit_on_signal(signal.SIGTERM)  # what the installed handler calls
        await wait_for(pilot, lambda: app.return_value is not None, "the app to leave")
    assert app.return_value == 128 + signal.SIGTERM and app.exit_note is None  # run_app exits with it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.ckpt"]


async def test_form_errors_follow_the_typing_and_inert_settings_and_unsampled_prefixes_are_named() -> None:
    app = make_app("--epochs", "2", "--pred-period", "1", "--prefix", "xyz", "--prefix", "分开")
    async with app.run_test(size=SIZE) as pilot:
        form = app.main.settings
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 1, "the first epoch")
        lr = form.widget("lr")
        lr.focus()
        lr.value = "0"
        await press(pilot, "enter")
        await wait_for(pilot, lambda: "lr" in form.errors, "the lr error")
        lr.value = "nan"  # typing on, no Enter: the error follows
        await wait_for(pilot, lambda: "finite" in form.errors.get("lr", ""), "the error to change")
        lr.value = "0.002"
        await wait_for(pilot, lambda: "lr" not in form.errors, "the error to go")
        assert "lr" not in str(form.query_one("#settings-error").render())

        box = app.main.generate_box  # the generate box's errors follow the typing too
        length = app.query_one("#gen-length", Input)
        length.value = "-1"
        length.focus()
        await press(pilot, "enter")
        await wait_for(pilot, lambda: box.last_error is not None and "≥ 0" in box.last_error, "the length error")
        length.value = "ten"
        await wait_for(pilot, lambda: "got 'ten'" in (box.last_error or ""), "the length error to change")
        length.value = "20"
        await wait_for(pilot, lambda: box.last_error is None, "the length error to go")

        form.set_text("dropout", "0.3")
        await wait_for(pilot, lambda: form.widget("dropout").has_class("-inert"), "dropout marked")
        assert "dropout: no effect with 1 layer" in str(form.query_one("#settings-error").render())
        form.set_text("layers", "2")
        await wait_for(pilot, lambda: not form.widget("dropout").has_class("-inert"), "the mark to go")

        note = "not sampled: prefix 'xyz' ('x', 'z') has characters not in this corpus; set prefixes in the form"
        await wait_for(pilot, lambda: note in app.main.samples.lines_written, "the note on the prefixes")
        assert app.main.samples.lines_written.count(note) == 1  # told once, not at every period
        assert any(line.startswith(" - 分开") for line in app.main.samples.lines_written)

        await pilot.resize_terminal(60, 16)
        await wait_for(pilot, lambda: app.screen.has_class("-tiny"), "the too-small message")
        assert "The terminal is 60×16; rnn-tui needs at least 80×20" in str(app.query_one("#too-small").render())
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: not app.screen.has_class("-tiny"), "the panels back")
        table = app.main.shapes  # laid out again once shown at its new width: then no column is cut off at 80×24
        await wait_for(pilot, lambda: 0 < table.virtual_size.width <= table.size.width, "the Shapes table to fit")
        assert table.size.width <= 38


def app_in_a_pty(corpus_path: Path, cwd: Path, *flags: str) -> tuple[int, int]:
    """A real app in a real pseudo-terminal (100×30), in cwd: (its pid, the terminal's fd)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.chdir(cwd)
        os.environ.update({"RNN_TUI_CORPUS": str(corpus_path), "TERM": "xterm-256color", "OMP_NUM_THREADS": "1"})
        os.environ.update({"COLUMNS": "100", "LINES": "30"})
        os.execv(sys.executable, [sys.executable, "-m", "tui.main", "--hidden", "16", "--threads", "1", *flags])
    return pid, fd


def read_until(fd: int, needle: bytes, output: bytes = b"") -> bytes:
    deadline = time.monotonic() + 60
    while needle not in output:
        assert time.monotonic() < deadline, output[-500:]
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            output += os.read(fd, 65536)
    return output


def read_to_exit(pid: int, fd: int, output: bytes) -> tuple[int, bytes]:
    """Everything the app writes until it is gone; its exit code."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child is gone and the pty closed
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_the_app_quits_cleanly_on_a_signal(corpus_path: Path, tmp_path: Path, signum: int) -> None:
    """`kill` or a closed terminal: the app leaves as on ctrl+q, the terminal given back (the alternate screen
    left, the cursor shown), exit 128 + N. Nothing trained yet: nothing is written."""
    pid, fd = app_in_a_pty(corpus_path, tmp_path)
    output = read_until(fd, b"Perplexity")  # the first frame is drawn
    os.kill(pid, signum)
    code, output = read_to_exit(pid, fd, output)
    assert code == 128 + signum
    assert b"\x1b[?1049l" in output[-2000:] and b"Traceback" not in output
    assert list(tmp_path.iterdir()) == []


def test_a_signal_after_training_keeps_the_weights_nobody_saved(corpus_path: Path, tmp_path: Path) -> None:
    """The terminal closed (SIGHUP) after three epochs never saved: they are kept in ./rnn-tui.rescued-STAMP.ckpt,
    and the line after the app says where."""
    pid, fd = app_in_a_pty(corpus_path, tmp_path, "--epochs", "3", "--seed", "0")
    output = read_until(fd, b"finished")
    os.kill(pid, signal.SIGHUP)
    code, output = read_to_exit(pid, fd, output)
    assert code == 128 + signal.SIGHUP and b"Traceback" not in output
    [rescued] = tmp_path.glob("rnn-tui.rescued-*.ckpt")
    kept = checkpoints.load(rescued)
    assert kept.epoch == 3 and len(kept.history) == 3 and kept.seed == 0
    told = output.decode(errors="replace").replace("\r", "")
    assert f"rnn-tui: SIGHUP: the run's weights (epoch 3) were not saved; they are in {rescued} " in told
    assert f"(rnn-tui --resume {rescued} continues them)" in told
