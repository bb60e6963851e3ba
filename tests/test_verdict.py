"""The verdict line (engine/lab/verdict.py): which text it reads, its words either way, and the surfaces that show it
(the headless run and --metrics: tests/test_test_text.py; the Status panel at both sizes: tests/test_fit_small.py)."""

from __future__ import annotations

import re

import pytest
from pilot_helpers import wait_for

from engine.lab.ngram import NgramTable
from engine.lab.verdict import figure, verdict
from tui.app import RnnTuiApp
from tui.app.screens.runs_compared import RunsScreen
from tui.cli import app_options, parse
from tui.main import main

TABLE = NgramTable((5, 6, 7), (3.91, 3.76, 3.77), 17_000, 0, test=(4.0, 3.86, 3.9), test_targets=17_000)


def test_held_out_while_training_and_test_once_there_is_a_test_figure() -> None:
    during = verdict(TABLE, 4.71)
    assert during is not None and during.line() == "counting: 6-gram 3.76 — this model 4.71, ×1.25 worse (held-out)"
    ended = verdict(TABLE, 4.71, 3.59)
    assert ended is not None and ended.line() == "counting: 6-gram 3.86 — this model 3.59, ×0.93, better (test)"
    assert ended.short() == "6-gram 3.86: ×0.93, better (test)"
    assert ended.record() == {"counting_best": 3.86, "counting_order": 6, "counting_text": "test"}


def test_no_figure_no_verdict_and_no_test_text_stays_on_held_out() -> None:
    assert verdict(TABLE, None) is None and verdict(TABLE, float("nan")) is None
    plain = NgramTable((1, 2), (231.6, 142.9), 1_470, 190)
    judged = verdict(plain, 224.0, 230.0)
    assert judged is not None and judged.text == "held-out" and judged.line().endswith("224.0, ×1.57 worse (held-out)")


def test_a_lessons_observation_ends_with_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--headless", "--lesson", "memorisation", "--epochs", "2", "--hidden", "16", "--threads", "1"]
    assert main([*argv, "--seed", "0"]) == 0
    observation = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("lesson memorisation:"))
    assert re.search(r"\. Counting: 7-gram 133\.2 — this model [\d.,]+, ×[\d.]+ worse \(test\)\.$", observation)


async def test_runs_compared_lists_each_runs_test_figure_and_the_verdict() -> None:
    app = RnnTuiApp(app_options(parse(["--hidden", "16", "--threads", "1", "--seed", "0", "--epochs", "2"])))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "2 epochs")
        await wait_for(pilot, lambda: app.run_control.status.counting is not None, "the counting baselines")
        test = app.run_control.status.test
        assert test is not None
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "F10")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        assert screen.describe(0, screen.book.labels()[0]).endswith(f"; test {test.perplexity:,.1f}")
        shown = screen.baselines().plain
        assert "counting, held-out (this run's text): 1-gram 223.9" in shown
        assert f"counting: 7-gram 133.2 — this model {figure(test.perplexity)}, ×" in shown and "(test)" in shown


def test_the_plots_reference_lines_keep_the_figures_that_matter() -> None:
    from engine.lab.ngram import NgramTable
    from tui.baselines import reference_lines

    letters = NgramTable(n=(2, 7), held_out=(9.504, 3.5913), targets=17_000, unseen=0)
    assert [label for label, _ in reference_lines(letters)] == ["7-gram 3.59", "2-gram 9.5"]  # not "7-gram 4"
    lyrics = NgramTable(n=(2, 7), held_out=(142.87, 128.96), targets=1_500, unseen=0)
    assert [label for label, _ in reference_lines(lyrics)] == ["7-gram 129", "2-gram 143"]
