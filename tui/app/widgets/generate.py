"""Generate box: a prefix, a length, a temperature and a top-k; Enter generates from the current weights."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Static

from engine.config import MAX_PREFIX_LEN
from tui.app.widgets.ordered_input import OrderedInput


@dataclass
class GenerateRequested(Message):
    prefix: str
    length: int  # not capped here: the worker caps a huge one (engine.generate.capped_length) and says so
    temperature: float | None  # None: greedy
    top_k: int | None = None  # None: every character


def parse_length(text: str) -> int:
    """The length box's value, or ValueError with a one-line message. A huge length is capped later, with a note."""
    try:
        length = int(text.strip())
    except ValueError:
        raise ValueError(f"length must be a whole number, got {text.strip()!r}") from None
    if length < 0:
        raise ValueError(f"length must be a whole number ≥ 0, got {length:,}")
    return length


def parse_top_k(text: str) -> int | None:
    """Blank means every character; otherwise a whole number ≥ 1."""
    if not text.strip():
        return None
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"top-k must be a whole number ≥ 1 (blank: every character), got {text.strip()!r}")
    return value


def parse_temperature(text: str) -> float | None:
    """Blank means greedy (the book); otherwise a number > 0."""
    if not text.strip():
        return None
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"temperature must be a number > 0 (blank: greedy), got {text.strip()!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"temperature must be a number > 0 (blank: greedy), got {text.strip()!r}")
    return value


HINT = "Enter generates from the current weights (F2 to come back here)"


class GenerateBox(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Generate  (F2)"
        self.last_text: str | None = None  # the latest generated text, or the latest error's message
        self.last_error: str | None = None
        self.suggested_prefix = "分开"  # the prefix put in the box, until the user types another

    def suggest_prefix(self, prefix: str) -> None:
        """Offer a run's first sample prefix (d2l-en: "it has"), unless the user has typed a prefix of their own."""
        box = self.query_one("#prefix", Input)
        if box.value == self.suggested_prefix and prefix != box.value:
            box.value = prefix
        self.suggested_prefix = prefix

    def compose(self) -> ComposeResult:
        with Horizontal(id="generate-row"):
            yield Label("prefix ")
            yield OrderedInput(
                self.suggested_prefix,
                id="prefix",
                compact=True,
                placeholder="type a prefix, Enter",
                max_length=MAX_PREFIX_LEN,  # a huge paste is cut here, not read whole into the seat's memory
            )
            yield Label(" len ")
            # Up to 12 digits: a huge length is accepted, then capped with a note (the catalogue's row).
            yield OrderedInput("50", id="gen-length", compact=True, max_length=12)
            yield Label(" temp ")
            yield OrderedInput("", id="gen-temperature", compact=True, placeholder="greedy", max_length=8)
            yield Label(" top-k ")
            yield OrderedInput("", id="gen-top-k", compact=True, placeholder="all", max_length=6)
        yield Static(HINT, id="gen-output")

    def _values(self) -> tuple[int, float | None, int | None]:
        return (
            parse_length(self.query_one("#gen-length", Input).value),
            parse_temperature(self.query_one("#gen-temperature", Input).value),
            parse_top_k(self.query_one("#gen-top-k", Input).value),
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            length, temperature, top_k = self._values()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.show_busy()
        self.post_message(GenerateRequested(self.query_one("#prefix", Input).value, length, temperature, top_k))

    def on_input_changed(self, event: Input.Changed) -> None:
        """An error shown follows the typing: another error replaces it, a fix clears it (the prefix's own check,
        against the vocabulary, comes again on Enter)."""
        if self.last_error is None:
            return
        try:
            self._values()
        except ValueError as exc:
            self.show_error(str(exc))
        else:
            self.output.update(Text(HINT, style="dim"))
            self.output.remove_class("-error")
            self.last_error = None

    @property
    def output(self) -> Static:
        return self.query_one("#gen-output", Static)

    def show_busy(self) -> None:
        self.output.update(Text("generating…", style="dim"))
        self.output.remove_class("-error")
        self.last_text = self.last_error = None

    def show_result(self, text: str, note: str | None, source: str) -> None:
        shown = Text()
        if note:
            shown.append(note + "\n", style="italic yellow")
        shown.append(text)
        shown.append(f"   ({source})", style="dim")
        self.output.update(shown)
        self.output.remove_class("-error")
        self.last_text, self.last_error = text, None

    def show_error(self, message: str) -> None:
        self.output.update(Text(message, style="bold red"))
        self.output.add_class("-error")
        self.last_error, self.last_text = message, None
