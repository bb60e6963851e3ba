"""The samples printed at every pred-period, labelled with their epoch, as the book's printout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import events as textual_events
from textual.widgets import RichLog

from engine import events

if TYPE_CHECKING:
    from engine.lab.copies import SampleCopy


class SamplesLog(RichLog):
    def __init__(self, *, id: str | None = None) -> None:
        # wrap: a 50-character Chinese sample is 100 cells wide; auto_scroll keeps the newest in view;
        # min_width 1: RichLog's default (78) would lay lines out wider than the panel and cut them off.
        super().__init__(id=id, wrap=True, markup=False, auto_scroll=True, max_lines=5000, min_width=1)
        self.written: list[Text] = []  # everything written, to wrap again when the panel's width changes
        self._wrapped_at = 0

    @property
    def lines_written(self) -> list[str]:
        """Plain text of what was written, for tests and copying."""
        return [line.plain for line in self.written]

    def add_samples(self, epoch_line: str, samples: events.Samples) -> None:
        self._write(Text(epoch_line, style="bold"))
        copies = samples.copies if len(samples.copies) == len(samples.samples) else (None,) * len(samples.samples)
        for (_, text), copy in zip(samples.samples, copies, strict=True):
            self._write(sample_line(text, copy))

    def add_note(self, note: str, error: bool = False) -> None:
        self._write(Text(note, style="bold red" if error else "italic dim"))

    def _write(self, line: Text) -> None:
        self.written = [*self.written[-4999:], line]
        self.write(line)

    def on_resize(self, event: textual_events.Resize) -> None:
        # RichLog wraps a line once, when written: after a resize, lay everything out again at the new width.
        width = self.scrollable_content_region.width
        if self.written and width != self._wrapped_at:
            self.clear()
            for line in self.written:
                self.write(line)
        self._wrapped_at = width


def sample_line(text: str, copy: SampleCopy | None) -> Text:
    """- the sample, its stretches found verbatim in the training text (≥ 8 characters) underlined in reverse video
    (not colour alone), then how many generated characters they hold: "copied 31 of 50" (nothing when none)."""
    line = Text(" - ")
    if copy is None:
        line.append(text)
        return line
    at = 0
    for start, end in copy.spans:
        line.append(text[at:start])
        line.append(text[start:end], style="reverse underline")
        at = end
    line.append(text[at:])
    if copy.copied:  # nothing said of a sample with no copy: the panel is a few lines high
        line.append(f"  copied {copy.copied} of {copy.generated}", style="bold magenta")
    return line
