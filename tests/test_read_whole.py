"""Every screen reads whole at 80×24 as at 100×30 (#29), measured on the composited screen, the characters a learner
sees: the footer names ^o Load; F1 explains saliency, the effective context and gate saturation, each title once;
F4's loop note has a line of its own; F10's help line is not cut; the horizon's legend is one line, its figures name
each text, and the whole text's tick is drawn; the gradients chart has a y label at each end; a finished lesson's
observation leaves the figures in Status (one line at 80×24, three at most at 100×30). Real corpus, a tiny LSTM,
Textual's pilot."""

from __future__ import annotations

import re

import pytest
from pilot_helpers import wait_for
from textual.widgets import Input, TabbedContent

from tui.app import RnnTuiApp
from tui.app.screens import HelpScreen
from tui.app.screens.lab import LabScreen
from tui.app.screens.lab_gradients import GradientsPane
from tui.app.screens.lab_horizon import HorizonPane
from tui.app.screens.next_char import NextCharScreen
from tui.app.screens.runs_compared import RunsScreen
from tui.cli import app_options, parse

SIZES = [(80, 24), (100, 30)]
TINY = ["--hidden", "16", "--threads", "1", "--max-chars", "2000", "--val-chars", "300", "--pred-len", "20"]


def screen_text(app: RnnTuiApp) -> str:
    """The screen as drawn: every row of the composited frame, dialogs over the panels."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@pytest.mark.parametrize("size", SIZES)
async def test_every_screen_reads_whole(size: tuple[int, int]) -> None:
    app = RnnTuiApp(app_options(parse([*TINY, "--cell", "lstm", "--epochs", "2", "--seed", "0"])))
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "2 epochs")
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "^s Save" in footer and "^o Load" in footer and "f11 Lab" in footer, footer

        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "F1")
        help_text = "\n".join(str(widget.render()) for widget in app.screen.query("#help-settings"))
        for term in ("saliency (F4", "effective context (F4", "gate saturation (F9"):
            assert term in help_text, term
        for title in ("Timeline", "Lessons", "Memory horizon"):
            assert f"{title}: {title}" not in help_text
            assert f"{title}: " in help_text
        await pilot.press("escape")

        app.query_one("#gen-length", Input).value = "60"
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, NextCharScreen), "F4")
        why = app.screen
        assert isinstance(why, NextCharScreen)
        await wait_for(pilot, lambda: bool(why.steps) or why.error is not None, "the explanation")
        await pilot.pause()
        shown = screen_text(app)
        subtitle = why.query_one("#next-box").border_subtitle or ""
        assert subtitle and f"{subtitle} ─╯" in shown, subtitle  # the whole subtitle, its border's corner after it
        if why.loop is not None:  # the tiny model repeats itself: the note is a line of the view, whole
            assert "↻ loop: from character" in shown and "times)" in shown, shown  # wrapped, not cut
        assert "│  #   chose" in shown  # the table still has its place
        await pilot.press("escape")

        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "F10")
        await pilot.pause()
        shown = screen_text(app)
        assert "space ticks a run" in shown and "fresh)" in shown, shown
        await pilot.press("escape")

        await pilot.press("f11")
        await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), "the lab")
        gradients = app.screen.query_one(GradientsPane)
        await wait_for(pilot, lambda: gradients.computed > 0, "the gradients")
        await pilot.pause()
        shown = screen_text(app)
        assert "windows of 100 held-out-text characters" in shown and "∂ (h, c) k steps back" in shown, shown
        labels = re.findall(r"1e-?\d+┤", shown)
        assert len(labels) >= 2, shown  # a y label at each end of the log axis at least

        app.screen.query_one(TabbedContent).active = "lab-horizon"
        horizon = app.screen.query_one(HorizonPane)
        await wait_for(pilot, lambda: horizon.horizon is not None, "the horizon")
        await pilot.pause()
        shown = screen_text(app)
        legend = "⣀ training text  • held-out text  ─ training perplexity"
        assert legend in shown, shown  # on one line
        assert "training text 2,000 chars · held-out text 300" in shown, shown
        assert re.search(r"whole text: [\d.,]+ +train [\d.,]+ \([\d.,]+×\): under ×2, no trap", shown), shown
        axis = next(line for line in shown.splitlines() if re.search(r"│ +1 +2 +4 ", line))
        assert "2.0k" in axis, axis  # the whole text's tick (1,999 characters read), not cut
        await pilot.press("escape")


@pytest.mark.parametrize("size", SIZES)
async def test_a_finished_lessons_observation_leaves_the_figures_in_status(size: tuple[int, int]) -> None:
    app = RnnTuiApp(app_options(parse(["--lesson", "untrained-writer", *TINY, "--epochs", "2"])))
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.message.startswith("lesson "), "the observation")
        await pilot.pause()
        panel = app.main.status
        visible = panel.render_status().plain.splitlines()[: panel.content_size.height]
        shown = "\n".join(visible)
        assert "lesson untrained-writer: at epoch" in shown and "…" in shown, visible  # one line or two, cut
        assert "train " in shown and "held-out " in shown, visible  # the figures stay on screen
        assert "lesson untrained-writer: at epoch 1" in "\n".join(line.plain for line in app.main.samples.written)
