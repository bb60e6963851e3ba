"""A learner who picks another lesson in the app (a served seat included: its session is given the class's CSV of
the lesson the teacher chose) keeps their observation: it goes to that lesson's own CSV beside the class's, and the
Samples panel says where. Real corpus, tiny model, driven by Textual's pilot."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from pilot_helpers import wait_for

from tui.app import RnnTuiApp
from tui.app.screens import ConfirmScreen
from tui.cli import app_options, parse

SIZE = (100, 30)
TINY = ["--hidden", "16", "--threads", "1", "--max-chars", "2000", "--val-chars", "300", "--pred-len", "20"]


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


async def test_another_lesson_picked_in_the_app_goes_to_its_own_csv_and_says_so(tmp_path: Path) -> None:
    table = tmp_path / "observations-untrained-writer.csv"  # as `rnn-tui serve --lesson untrained-writer` names it
    argv = ["--lesson", "untrained-writer", *TINY, "--epochs", "2", "--observations", str(table)]
    app = RnnTuiApp(app_options(parse(argv)))
    async with app.run_test(size=SIZE) as pilot:
        control = app.run_control
        await wait_for(pilot, lambda: table.exists() and len(rows(table)) == 1, "the first lesson's row")
        before = table.read_text(encoding="utf-8")
        control.lesson = "memorisation"  # what the Lab's Lessons tab sets (tests/test_lessons_app.py drives the tab)
        await pilot.press("f7")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ConfirmScreen) or control.status.state != "finished",
            "F7's question, or the new run",
        )
        if isinstance(app.screen, ConfirmScreen):
            await pilot.press("enter")
        own = tmp_path / "observations-memorisation.csv"
        await wait_for(pilot, lambda: own.exists() and control.status.state == "finished", "the second lesson's row")
        row = rows(own)
        assert len(row) == 1 and row[0]["lesson"] == "memorisation" and row[0]["best_epoch"] in ("1", "2")
        assert table.read_text(encoding="utf-8") == before  # the class's file keeps only its own lesson's rows
        notes = [line.plain for line in app.main.samples.written]
        told = [line for line in notes if "observations-memorisation.csv" in line]
        assert len(told) == 1 and "observations-untrained-writer.csv" in told[0], notes
        told_style = next(line.style for line in app.main.samples.written if line.plain == told[0])
        assert "red" not in str(told_style)  # where the row went is news, not an error: nothing failed
        assert any(line.startswith("lesson memorisation: ") for line in notes)


def test_another_lessons_file_is_named_beside_the_class_one() -> None:
    from tui.lesson_report import lesson_file

    assert lesson_file("/class/observations-memorisation.csv", "cells") == Path("/class/observations-cells.csv")
    assert lesson_file("/class/week6.csv", "cells") == Path("/class/week6-cells.csv")


async def test_the_server_tells_the_teacher_where_other_lessons_rows_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tui.cli import parse as parse_args
    from tui.serve.server import ClassroomServer
    from tui.serve.settings import settings_from_args

    monkeypatch.chdir(tmp_path)
    settings = settings_from_args(parse_args(["serve", "--lesson", "memorisation", "--workdir", str(tmp_path / "w")]))
    await ClassroomServer(settings).on_startup(None)  # type: ignore[arg-type]  # it prints; the app is not read
    out = capsys.readouterr().out
    assert f"their observations collect in {tmp_path / 'observations-memorisation.csv'}" in out
    assert "another lesson in the app: its rows go to observations-LESSON.csv beside it" in out
