"""Optional extras (pyproject's [serve] and [postgres]): a command that needs one that is not installed says so in
one line naming the pip command that adds it, exit code 2, never a traceback. Not installed is made real by
hiding the module (sys.modules[name] = None makes its import fail, as on a machine without it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.extras import POSTGRES, SERVE
from tui.cli import parse, run_command
from tui.main import main


def test_the_extras_are_installed_here() -> None:
    # The test extra brings both ([test] requires rnn-tui[serve,postgres]), so the other tests can use them.
    assert SERVE.missing("x") is None and POSTGRES.missing("x") is None


def test_serve_without_its_extra_names_the_command_that_adds_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "textual_serve", None)
    with pytest.raises(SystemExit) as exit_info:
        main(["serve"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "rnn-tui: error: rnn-tui serve needs the classroom server (textual-serve), an optional extra: "
        "pip install 'rnn-tui[serve]' (in a clone: pip install -e '.[serve]')"
    ]


def test_a_postgresql_sweep_without_its_driver_names_the_command_that_adds_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run_command(parse(["sweep", "--storage", "postgresql://class:secret@db.lab:5432/rnn"]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err) and "secret" not in "\n".join(err)
    assert err[-1] == (
        "rnn-tui: error: storage postgresql+psycopg://class:***@db.lab:5432/rnn needs the PostgreSQL driver "
        "(psycopg 3), an optional extra: pip install 'rnn-tui[postgres]' (in a clone: pip install -e '.[postgres]')"
    )
