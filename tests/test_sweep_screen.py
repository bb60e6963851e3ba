"""The Sweep screen (F12), driven by Textual's pilot: a real `rnn-tui sweep` process on the real corpus."""

from __future__ import annotations

from pathlib import Path

from pilot_helpers import wait_for
from textual.widgets import DataTable, Input

from tui.app import RnnTuiApp
from tui.cli import app_options, parse
from tui.screens import HelpScreen
from tui.screens.sweep import SweepScreen

SIZE = (100, 30)


async def test_sweep_screen_starts_a_sweep_lists_its_trials_and_applies_the_best(tmp_path: Path) -> None:
    argv = ["--hidden", "16", "--max-chars", "4000", "--threads", "1", "--seed", "0", "--paused"]
    app = RnnTuiApp(app_options(parse(argv)))
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f12")
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        for name, value in (("storage", storage), ("space", "lr=0.002,0.02 cell=rnn,gru"), ("trials", "2"),
                            ("epochs", "2")):  # fmt: skip
            screen.query_one(f"#sweep-{name}", Input).value = value
        await pilot.click("#sweep-start")
        assert app.sweep_state.running
        assert "--search lr=0.002,0.02" in app.sweep_state.command and "--hidden 16" in app.sweep_state.command
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count >= 1, "a trial in the table", timeout=90)
        await wait_for(pilot, lambda: screen.best_row() is not None, "a complete trial", timeout=90)
        best = screen.best_row()
        assert best.best is not None and best.epochs == 2
        # Apply best: the trial's settings go into the form.
        app.main.settings.set_text("lr", "0.5")
        await pilot.click("#sweep-apply")
        assert app.main.settings.value("lr") == best.params["lr"]
        assert app.main.settings.text_of("cell") == best.params["cell"]
        # Compare: the trial's epochs go into F10's run book.
        table.move_cursor(row=0)
        await pilot.press("ctrl+t")
        await pilot.click("#sweep-compare")
        assert any(run.origin.startswith("trial ") and len(run.history) == 2 for run in app.runs.run_book.runs)
        await wait_for(pilot, lambda: not app.sweep_state.running, "the sweep's end", timeout=90)
        await wait_for(pilot, lambda: screen.ended is not None, "its end reported")
        assert screen.ended.returncode == 0 and "rnn-tui train --headless" in screen.ended.message
        # The sort follows a header click.
        await pilot.click("#sweep-table", offset=(12, 0))
        # A bad number is an inline error, and no process starts.
        screen.query_one("#sweep-trials", Input).value = "0"
        await pilot.click("#sweep-start")
        assert "trials must be a whole number ≥ 1" in screen.message
        assert not app.sweep_state.running


async def test_sweep_is_in_help_and_the_palette() -> None:
    app = RnnTuiApp(app_options(parse(["--hidden", "16", "--paused"])))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        assert ("f12", "Sweep") in [(key, description) for key, description, _ in app.screen.keys]
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Sweep (F12)" in titles


async def test_opening_a_study_that_does_not_exist_says_so(tmp_path: Path) -> None:
    app = RnnTuiApp(app_options(parse(["--hidden", "16", "--paused"])))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f12")
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        screen.query_one("#sweep-storage", Input).value = f"sqlite:///{tmp_path / 'sweeps.db'}"
        screen.query_one("#sweep-study", Input).value = "nothere"
        await pilot.click("#sweep-open")
        # It said "reading study…" and then nothing, for ever.
        await wait_for(pilot, lambda: "no study 'nothere'" in screen.message, "the missing study told", timeout=30)
        assert "Start creates it" in screen.message
