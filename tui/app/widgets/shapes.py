"""What the recurrent layer returns for the current settings, computed from the sizes (engine.shapes)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rich.cells import cell_len
from textual import events as textual_events
from textual.widget import Widget
from textual.widgets import DataTable

if TYPE_CHECKING:  # the app imports engine.shapes when it first reports, not at start-up
    from engine.shapes import ShapeReport

# The engine's meanings are sentences; a panel half a terminal wide has room for a few words.
SHORT_MEANINGS = {
    "X": "one-hot input",
    "E[x]": "embedded input",
    "Y": "h, every step",
    "state": "h, last step",
    "state[0] = h": "h, last step",
    "state[1] = c": "c, last step",
    "dense(Y)": "char scores",
}


HEADERS = ("tensor", "shape", "what it is")
# How the table is laid out: cell padding, headers, rows (see fitting_rows).
Layout = tuple[int, tuple[str, ...], list[tuple[str, ...]]]


def format_shape(shape: tuple[int, ...], compact: bool = False) -> str:
    return "(" + (",".join if compact else ", ".join)(str(n) for n in shape) + ")"


def fitting_rows(report: ShapeReport, width: int) -> Layout:
    """The cell padding, headers and rows to show in `width` cells with no column cut off: shapes written compactly,
    then columns one space apart, then without the meanings column (an LSTM in an 80-column terminal)."""
    layouts = ((False, True, 1), (True, True, 1), (True, True, 0), (True, False, 1))
    for compact, meanings, padding in layouts:
        headers: tuple[str, ...] = HEADERS if meanings else HEADERS[:2]
        rows = [
            (t.name, format_shape(t.shape, compact), SHORT_MEANINGS.get(t.name, t.meaning))[: len(headers)]
            for t in report.tensors
        ]
        if padding == 0:  # one space after each column instead of one on either side
            headers = tuple(f"{h} " for h in headers)
            rows = [tuple(f"{cell} " for cell in row) for row in rows]
        widths = [max(cell_len(text) for text in column) for column in zip(headers, *rows, strict=True)]
        if width <= 0 or sum(widths) + 2 * padding * len(widths) <= width:
            break
    return padding, headers, rows


class ShapesTable(DataTable[str]):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="none", zebra_stripes=False, show_cursor=False)
        self.rows_shown: list[tuple[str, str]] = []  # (tensor, shape) as displayed, for tests

    def on_mount(self) -> None:
        self.add_columns(*HEADERS)
        self._report: ShapeReport | None = None
        self._layout: Layout | tuple[()] = ()

    def on_resize(self, event: textual_events.Resize) -> None:
        if self._report is not None:
            self._fill()

    def _fill(self) -> None:
        if self._report is None:  # nothing reported yet (its callers wait for a report)
            return
        padding, headers, rows = fitting_rows(self._report, self.size.width)
        if (padding, headers, rows) == self._layout:
            return
        self._layout = (padding, headers, rows)
        self.clear(columns=True)
        self.cell_padding = padding
        # Widths given, not measured by DataTable when idle: the header was once drawn before that measure, narrower
        # than its rows (seen on a loaded machine).
        for index, header in enumerate(headers):
            self.add_column(header, width=max(cell_len(text) for text in (header, *(row[index] for row in rows))))
        for row in rows:
            self.add_row(*row)

    def show_report(self, report: ShapeReport, pending: bool) -> None:
        """pending: it is for the form's settings, not yet applied."""
        self._report = report
        self._fill()
        self.rows_shown = [(tensor.name, format_shape(tensor.shape)) for tensor in report.tensors]
        parent = self.parent
        if isinstance(parent, Widget):
            title = f"Shapes: {report.cell.upper()}"
            parent.border_title = title + ("  (form settings, F7 applies)" if pending else "")
            # The book's print(Y.shape, len(state_new), state_new[0].shape), without the torch.Size noise.
            parent.border_subtitle = "book: " + re.sub(r"torch\.Size\((\[[^\]]*\])\)", r"\1", report.book_line)
