"""Helpers shared by the app's pilot tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.content import Content
from textual.pilot import Pilot
from textual.widget import Widget


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Let the app run until condition holds; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def click_again(pilot: Pilot[Any], selector: str) -> None:
    """Click a button that was clicked moments ago: Textual's Button ignores a click while its 0.2 s press effect
    (the -active class) lasts, so on a fast machine a second click could land inside it and do nothing."""
    button = pilot.app.screen.query_one(selector)
    await wait_for(pilot, lambda: not button.has_class("-active"), f"{selector}'s press effect to end", timeout=10)
    await pilot.click(selector)


def shown_text(widget: Widget) -> str:
    """The text a widget draws (its render(): a rich Text or Textual's Content), without styles."""
    rendered = widget.render()
    assert isinstance(rendered, (Text, Content)), type(rendered)
    return rendered.plain
