"""The splash `rnn-tui` paints before Textual is imported, and how it gives the terminal back."""

from __future__ import annotations

import builtins
import io
import sys
from typing import Any

import pytest

import tui.main


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def fake_terminal(monkeypatch: pytest.MonkeyPatch) -> FakeTerminal:
    """Called in the test itself: pytest puts its own sys.stdout back between a fixture and the test."""
    screen = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("LINES", "30")
    return screen


def test_splash_is_painted_on_the_alternate_screen_and_centred(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = fake_terminal(monkeypatch)
    assert tui.main.show_splash()
    painted = terminal.getvalue()
    assert painted.startswith(tui.main.ENTER_ALTERNATE_SCREEN)  # so it never stays in the scrollback
    # Row 15 of 30, centred in 100 columns: "rnn-tui" is 7 wide.
    assert "\x1b[15;47Hrnn-tui" in painted
    assert "starting: loading the interface…" in painted


def test_no_splash_when_output_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    assert not tui.main.show_splash()
    assert stdout.getvalue() == ""


def failing_import(error: BaseException) -> Any:
    real_import = builtins.__import__

    def importer(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "tui.app":
            raise error
        return real_import(name, *args, **kwargs)

    return importer


def test_a_broken_install_gives_the_terminal_back(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = fake_terminal(monkeypatch)
    monkeypatch.delitem(sys.modules, "tui.app", raising=False)
    monkeypatch.setattr(builtins, "__import__", failing_import(ImportError("no module named textual")))
    with pytest.raises(ImportError):
        tui.main.main(["--epochs", "3"])
    assert terminal.getvalue().endswith(tui.main.LEAVE_ALTERNATE_SCREEN)


def test_ctrl_c_while_starting_leaves_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = fake_terminal(monkeypatch)
    monkeypatch.delitem(sys.modules, "tui.app", raising=False)
    monkeypatch.setattr(builtins, "__import__", failing_import(KeyboardInterrupt()))
    assert tui.main.main([]) == 130
    assert terminal.getvalue().endswith(tui.main.LEAVE_ALTERNATE_SCREEN)
