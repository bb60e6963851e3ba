"""The app, driven by Textual's pilot on the real corpus: training, controls, generation, settings, quitting.

Models are small (hidden 64) and runs short so the whole file takes well under a minute on two cores;
the corpus, the trainer and the app are the real ones.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import pytest
from pilot_helpers import wait_for
from textual import events as textual_events
from textual.widgets import Input

from engine import events
from tui.app import RnnTuiApp
from tui.app.screens import ConfirmScreen, HelpScreen
from tui.app.widgets.plot import thin
from tui.app.worker import EventBuffer
from tui.cli import app_options, parse

SIZE = (100, 30)
FAST = ["--hidden", "64", "--threads", "1", "--seed", "0"]


def make_app(*flags: str) -> RnnTuiApp:
    return RnnTuiApp(app_options(parse([*FAST, *flags])))


def training_threads() -> list[threading.Thread]:
    # Textual runs thread workers in the event loop's executor; a trainer's thread is one still inside run().
    return [t for t in threading.enumerate() if any("trainer.py" in f.f_code.co_filename for f in _frames(t))]


def _frames(thread: threading.Thread) -> list[FrameType]:
    frame = sys._current_frames().get(thread.ident or -1)
    frames = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return frames


def state(app: RnnTuiApp) -> str:
    return app.run_control.status.state


async def test_training_advances_and_panels_show_it() -> None:
    app = make_app("--epochs", "4", "--pred-period", "2")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "4 epochs")
        status = app.run_control.status
        assert status.epoch == 4 and status.epochs == 4
        assert status.vocab_size == 1027 and status.num_chars == 10_000  # the book's corpus, first 10,000 chars
        perplexities = [e.perplexity for e in app.run_control.epochs_seen]
        assert [e.epoch for e in app.run_control.epochs_seen] == [1, 2, 3, 4]
        assert perplexities[-1] < perplexities[0] < 1027 * 1.5  # it learns (uniform guessing: 1027)
        assert [epoch for epoch, _ in app.main.plot.points] == [1, 2, 3, 4]
        shown = app.main.status.render_status().plain
        assert "finished" in shown and "epoch 4/4" in shown and f"{perplexities[-1]:,.2f}" in shown
        lines = app.main.samples.lines_written
        assert any(line.startswith("epoch 2, perplexity") for line in lines)
        assert any(line.startswith("epoch 4, perplexity") for line in lines)
        assert sum(line.startswith(" - 分开") for line in lines) == 2
        assert sum(line.startswith(" - 不分开") for line in lines) == 2
        assert ("X", "(35, 32, 1027)") in app.main.shapes.rows_shown


async def test_pause_resume_and_step() -> None:
    app = make_app("--epochs", "50", "--paused")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(
            pilot,
            lambda: state(app) == "paused" and (run := app.run_control.current) is not None and run.trainer is not None,
            "paused start",
        )
        await pilot.pause(0.6)
        assert app.run_control.status.epoch == 0 and not app.run_control.epochs_seen  # --paused: nothing trains

        await pilot.press("f6")  # step: exactly one epoch, then paused again
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) == 1 and state(app) == "paused", "one step")
        await pilot.pause(0.6)
        assert len(app.run_control.epochs_seen) == 1

        await pilot.press("f5")  # resume
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 2, "training after resume")
        assert state(app) == "running"
        await pilot.press("f5")  # pause
        await wait_for(pilot, lambda: state(app) == "paused", "pause")
        settled = len(app.run_control.epochs_seen)
        await pilot.pause(0.8)
        assert len(app.run_control.epochs_seen) == settled  # at most the epoch in flight finished before pausing

        await pilot.press("f6")  # the key works while an input (the prefix box) has focus
        assert isinstance(app.focused, Input)
        await wait_for(
            pilot, lambda: len(app.run_control.epochs_seen) == settled + 1 and state(app) == "paused", "step 2"
        )


async def test_generate_known_traditional_and_unknown_prefixes() -> None:
    app = make_app("--epochs", "500")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 2, "two epochs")
        box = app.main.generate_box
        prefix = app.query_one("#prefix", Input)
        await pilot.press("f2")
        assert app.focused is prefix

        prefix.value = "分开"
        app.query_one("#gen-length", Input).value = "20"
        await pilot.press("enter")
        await wait_for(pilot, lambda: box.last_text is not None or box.last_error is not None, "generation")
        assert box.last_error is None
        assert box.last_text is not None and box.last_text.startswith("分开") and len(box.last_text) == 22
        assert state(app) == "running"  # generating did not stop or pause training

        prefix.value = "分開"  # Traditional, as printed on the book's page
        await pilot.press("enter")
        await wait_for(pilot, lambda: box.last_text is not None or box.last_error is not None, "conversion")
        assert box.last_text is not None and box.last_text.startswith("分开")
        assert "分開 → 分开" in str(box.output.render())

        prefix.value = "分开🎸"
        await pilot.press("enter")
        await wait_for(pilot, lambda: box.last_text is not None or box.last_error is not None, "the error")
        assert box.last_error is not None and "'🎸'" in box.last_error and "not in the vocabulary" in box.last_error

        app.query_one("#gen-temperature", Input).value = "-1"
        prefix.value = "分开"
        await pilot.press("enter")
        assert box.last_error is not None and "temperature" in box.last_error


async def test_live_lr_change_reaches_the_next_epoch() -> None:
    app = make_app("--epochs", "500")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 1, "first epoch")
        assert app.run_control.epochs_seen[0].lr == pytest.approx(1e-3)
        await pilot.press("f3")
        lr = app.query_one("#setting-lr", Input)
        assert app.focused is lr
        lr.value = "abc"
        await pilot.press("enter")
        assert "lr must be a number" in app.main.settings.errors["lr"]
        lr.value = "-1"
        await pilot.press("enter")
        assert "lr must be > 0" in app.main.settings.errors["lr"]  # the engine's ConfigError, inline
        lr.value = "0.005"
        await pilot.press("enter")
        assert "lr" not in app.main.settings.errors
        changed_at = len(app.run_control.epochs_seen)
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= changed_at + 2, "two more epochs")
        assert app.run_control.epochs_seen[-1].lr == pytest.approx(0.005)
        assert app.run_control.config is not None and app.run_control.config.lr == pytest.approx(0.005)
        assert "adam lr 0.005" in app.main.status.render_status().plain  # the trainer's settings, as reported
        # Leaving the field again without editing it is no change: nothing more is sent, nothing more is told.
        lr.focus()
        await pilot.press("tab", "shift+tab", "tab")
        seen = len(app.run_control.epochs_seen)
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= seen + 1, "one more epoch")
        told = [line for line in app.main.samples.lines_written if line.startswith("after epoch")]
        assert len(told) == 1 and told[0].endswith(": lr 0.005"), told


async def test_keys_typed_in_a_burst_apply_in_the_order_typed() -> None:
    """Backspace and the arrows ran only after bubbling up to the app, so a character typed after them could land
    first (Textual #6605): b a ⌫ c d ← x gave 'bacd'. Every text field of the app keeps the order."""
    app = make_app("--paused")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app.query("#settings Input")), "the settings form")
        for field in (app.query_one("#prefix", Input), app.main.settings.widget("prefixes")):
            assert isinstance(field, Input)
            field.value = ""
            field.focus()
            await pilot.pause()
            for key in ("b", "a", "backspace", "c", "d", "left", "x"):  # as a burst: no wait between keys
                app.post_message(textual_events.Key(key, key if len(key) == 1 else None))
            await pilot.pause(0.3)
            assert field.value == "bcxd", field.id


async def test_restart_as_lstm_changes_the_shapes_table() -> None:
    app = make_app("--epochs", "500")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.main.shapes.rows_shown) == 4, "the RNN's shapes")
        names = [name for name, _ in app.main.shapes.rows_shown]
        assert names == ["X", "Y", "state", "dense(Y)"]
        assert ("state", "(1, 32, 64)") in app.main.shapes.rows_shown

        app.main.settings.widget("cell").value = "lstm"
        app.main.settings.widget("layers").value = "2"
        await wait_for(pilot, lambda: len(app.main.shapes.rows_shown) == 5, "the LSTM preview")
        assert app.main.settings.widget("cell").has_class("-pending")
        await pilot.press("f7")
        assert isinstance(app.screen, ConfirmScreen)
        assert "cell" in app.screen.question and "layers" in app.screen.question
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: app.run_control.config is not None and app.run_control.config.cell == "lstm", "LSTM run"
        )
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 1, "an LSTM epoch")
        assert ("state[0] = h", "(2, 32, 64)") in app.main.shapes.rows_shown
        assert ("state[1] = c", "(2, 32, 64)") in app.main.shapes.rows_shown
        assert not app.main.settings.widget("cell").has_class("-pending")
        assert len(training_threads()) <= 1  # the RNN run's thread is gone


async def test_divergence_is_shown_and_the_app_restarts() -> None:
    app = make_app("--epochs", "5", "--optimizer", "sgd", "--lr", "10", "--clip", "0")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "failed", "divergence")
        assert app.run_control.failure is not None and "diverged" in app.run_control.failure
        assert "diverged" in app.main.status.render_status().plain
        lr = app.main.settings.widget("lr")
        lr.value = "1"
        await pilot.press("f7")  # only a live setting changed: no confirmation
        await wait_for(pilot, lambda: state(app) == "finished", "a healthy run")
        assert app.run_control.epochs_seen[-1].lr == 1 and app.run_control.failure is None


async def test_quit_mid_epoch_leaves_no_training_thread() -> None:
    app = make_app("--epochs", "200", "--hidden", "256")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "running" and bool(training_threads()), "training")
        started = time.monotonic()
        await pilot.press("ctrl+q")
    assert time.monotonic() - started < 1.5
    await asyncio.sleep(0.05)
    assert not training_threads()
    assert all(w.is_finished for w in app.workers)


async def test_help_lists_every_key() -> None:
    app = make_app("--epochs", "1", "--paused")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        listed = {key for key, _, _ in app.screen.keys}
        assert {"f1", "f2", "f5", "f6", "f7,ctrl+r", "f8", "ctrl+s", "ctrl+o", "ctrl+q"} <= listed
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        bound = {b.id for b in app.BINDINGS}
        assert {"help", "focus-prefix", "pause", "step", "restart", "stop", "save", "load", "quit"} <= bound


async def test_save_then_load_for_generation(tmp_path: Path) -> None:
    path = tmp_path / "run.ckpt"
    app = make_app("--epochs", "2")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "2 epochs")
        await pilot.press("ctrl+s")
        app.screen.query_one("#path", Input).value = str(path)
        await pilot.press("enter")
        await wait_for(pilot, path.exists, "the checkpoint file")
        await pilot.press("ctrl+o")
        app.screen.query_one("#path", Input).value = str(path)
        await pilot.click("#just-generate")
        await wait_for(pilot, lambda: state(app) == "checkpoint", "the loaded checkpoint")
        await pilot.press("enter")  # the prefix box has focus again
        box = app.main.generate_box
        await wait_for(pilot, lambda: box.last_text is not None, "generation from the checkpoint")
        assert "run.ckpt, epoch 2" in str(box.output.render())


def test_first_frame_does_not_wait_for_torch() -> None:
    code = "import sys, tui.app, tui.main; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_event_buffer_keeps_every_event_but_only_the_latest_progress() -> None:
    buffer = EventBuffer()
    for batch in range(1, 9):
        buffer.put(events.BatchDone(1, batch, 8))
    buffer.put(events.EpochEnd(1, 300.0, 0.5, 8960, 1e-3, 0.01))
    buffer.put(events.BatchDone(2, 1, 8))
    buffer.put(events.Samples(1, (("分开", "分开的"),)))
    queued, progress = buffer.take()
    assert [type(e).__name__ for e in queued] == ["EpochEnd", "Samples"]
    assert progress == events.BatchDone(2, 1, 8)
    assert buffer.take() == ([], None)


def test_thinning_keeps_first_and_latest() -> None:
    points = [(epoch, 1000.0 / epoch) for epoch in range(1, 5001)]
    shown = thin(points, 100)
    assert len(shown) == 100 and shown[0] == (1, 1000.0) and shown[-1] == points[-1]
    assert [e for e, _ in shown] == sorted({e for e, _ in shown})
    assert thin(points[:50], 100) == points[:50]
