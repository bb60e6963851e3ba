"""The samples printed at every pred-period, labelled with their epoch, as the book's printout."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from engine import events


class SamplesLog(RichLog):
    def __init__(self, *, id: str | None = None) -> None:
        # wrap: a 50-character Chinese sample is 100 cells wide; auto_scroll keeps the newest in view.
        super().__init__(id=id, wrap=True, markup=False, auto_scroll=True, max_lines=5000)
        self.lines_written: list[str] = []  # plain text of what was written, for tests and copying

    def add_samples(self, epoch_line: str, samples: events.Samples) -> None:
        self._write(Text(epoch_line, style="bold"))
        for _, text in samples.samples:
            self._write(Text(f" - {text}"))

    def add_note(self, note: str, error: bool = False) -> None:
        self._write(Text(note, style="bold red" if error else "italic dim"))

    def _write(self, line: Text) -> None:
        self.lines_written.append(line.plain)
        self.write(line)
