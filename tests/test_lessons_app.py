"""The lessons and the sample timeline in the app, driven by Textual's pilot on the real corpus: a lesson's run ends
with its observation in the Samples panel and the class's CSV; the Lab's Timeline tab scrubs every report's samples;
the Lessons tab fills the form with a lesson and restarts through F7's confirmation."""

from __future__ import annotations

import csv
from pathlib import Path

from pilot_helpers import wait_for
from textual.widgets import OptionList, Static, TabbedContent

from tui.app import RnnTuiApp
from tui.app.screens import ConfirmScreen
from tui.app.screens.lab import LabScreen
from tui.app.screens.lab_timeline import TimelinePane
from tui.cli import app_options, parse

SIZE = (100, 30)
TINY = ["--hidden", "16", "--threads", "1", "--max-chars", "2000", "--val-chars", "300", "--pred-len", "20"]


def samples_text(app: RnnTuiApp) -> str:
    return "\n".join(line.plain for line in app.main.samples.written)


async def test_a_lesson_run_ends_with_its_observation_and_the_timeline_scrubs_its_reports(tmp_path: Path) -> None:
    table = tmp_path / "class.csv"
    argv = ["--lesson", "untrained-writer", *TINY, "--epochs", "3", "--observations", str(table)]
    app = RnnTuiApp(app_options(parse(argv)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "lesson untrained-writer: at epoch 1" in samples_text(app), "the observation")
        assert "lesson untrained-writer: What does a model" in samples_text(app)  # the question came first
        trainer = app.run_control.trainer
        assert trainer is not None
        first = trainer.timeline()[0]
        generated = first.samples[0][1][len(first.samples[0][0]) :]
        assert f"wrote {len(set(generated))} distinct character" in samples_text(app)
        rows = list(csv.DictReader(table.open(encoding="utf-8")))
        assert len(rows) == 1 and int(rows[0]["first_distinct"]) == len(set(generated))

        await pilot.press("f11")
        await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), "the lab")
        app.screen.query_one(TabbedContent).active = "lab-timeline"
        pane = app.screen.query_one(TimelinePane)
        await wait_for(pilot, lambda: len(pane.entries) == 3, "three reports on the timeline")
        scrub = pane.query_one("#timeline-scrub", Static)
        assert pane.index == 2 and "epoch 3" in str(scrub.render())
        await pilot.press("left", "left")
        assert pane.index == 0 and "epoch 1  report 1 of 3" in str(scrub.render())
        assert first.samples[0][1] in str(pane.query_one("#timeline-text", Static).render())
        await pilot.press("end")
        assert pane.index == 2


async def test_the_lessons_tab_fills_the_form_and_restarts_through_the_confirmation() -> None:
    app = RnnTuiApp(app_options(parse([*TINY, "--epochs", "1"])))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "the first run")
        await pilot.press("f11")
        await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), "the lab")
        app.screen.query_one(TabbedContent).active = "lab-lessons"
        options = app.screen.query_one("#lessons-list", OptionList)
        await wait_for(pilot, lambda: options.has_focus, "the lessons list")
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.highlighted = ids.index("cells")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "F7's confirmation")
        assert app.run_control.lesson == "cells"
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: app.run_control.config is not None and app.run_control.config.cell == "lstm", "the lesson"
        )
        config = app.run_control.config
        assert config is not None and (config.hidden, config.epochs) == (106, 50)
        app.run_control.cancel()


async def test_the_timeline_tab_follows_a_run_that_is_still_reporting() -> None:
    app = RnnTuiApp(app_options(parse([*TINY, "--epochs", "6", "--pred-period", "1", "--paused"])))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.run_control.trainer is not None, "the trainer")
        trainer = app.run_control.trainer
        assert trainer is not None
        await wait_for(pilot, lambda: trainer.paused, "the paused start")
        trainer.step()  # one epoch, one report, then paused again: the tab opens on a run with reports to come
        await wait_for(pilot, lambda: len(trainer.timeline()) == 1 and trainer.paused, "the first report")
        await pilot.press("f11")
        await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), "the lab")
        app.screen.query_one(TabbedContent).active = "lab-timeline"
        pane = app.screen.query_one(TimelinePane)
        await wait_for(pilot, lambda: len(pane.entries) == 1, "the report so far")
        trainer.resume()
        await wait_for(pilot, lambda: len(pane.entries) == 6, "every report, read in as the run made them")
        assert pane.index == 5 and [e.epoch for e in pane.entries] == [1, 2, 3, 4, 5, 6]


async def test_shift_arrows_pick_a_lab_view_even_where_a_view_takes_the_arrows() -> None:
    app = RnnTuiApp(app_options(parse([*TINY, "--epochs", "1"])))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "the run")
        await pilot.press("f11")
        await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), "the lab")
        tabs = app.screen.query_one(TabbedContent)
        tabs.active = "lab-timeline"
        await pilot.pause()
        await pilot.press("right")  # the timeline scrubs with the arrows: the view stays
        assert tabs.active == "lab-timeline"
        await pilot.press("shift+right")
        assert tabs.active == "lab-lessons"
        await pilot.press("shift+right")  # round to the first view
        assert tabs.active == "lab-gradients"
        await pilot.press("shift+left", "shift+left")
        assert tabs.active == "lab-timeline"
