"""textual-serve's private hooks (tui.serve.hooks): a release that changes one fails here, loudly, and the server
refuses to start with one line instead of misbehaving in a classroom (issue 31, item 5)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from textual_serve.app_service import AppService

from tui.serve import hooks as serve_hooks

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_textual_serve_has_every_hook_the_server_overrides() -> None:
    assert serve_hooks.changed_hooks() == [], serve_hooks.check_hooks()
    assert version("textual-serve").startswith(serve_hooks.TESTED + ".")


def test_pyproject_bounds_textual_serve_to_the_tested_releases() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    (requirement,) = [r for r in extras["serve"] if r.startswith("textual-serve")]
    major, minor = serve_hooks.TESTED.split(".")
    assert re.search(rf"<{major}\.{int(minor) + 1}\b", requirement), requirement


def test_a_release_that_changes_a_hook_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    async def _open_app_process(self: AppService, size: tuple[int, int]) -> None: ...

    monkeypatch.setattr(AppService, "_open_app_process", _open_app_process)
    said = serve_hooks.check_hooks()
    assert said is not None and "\n" not in said
    assert "AppService._open_app_process('self', 'size')" in said and "textual-serve~=1.1.0" in said
