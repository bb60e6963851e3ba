"""What the recurrent layer returns for the current settings, computed from the sizes (engine.shapes)."""

from __future__ import annotations

from typing import Any

from textual.widget import Widget
from textual.widgets import DataTable

# The engine's meanings are sentences; a panel half a terminal wide has room for a few words.
SHORT_MEANINGS = {
    "X": "one-hot input",
    "Y": "h, every step",
    "state": "h, last step",
    "state[0] = h": "h, last step",
    "state[1] = c": "c, last step",
    "dense(Y)": "char scores",
}


def format_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


class ShapesTable(DataTable):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="none", zebra_stripes=False, show_cursor=False)
        self.rows_shown: list[tuple[str, str]] = []  # (tensor, shape) as displayed, for tests

    def on_mount(self) -> None:
        self.add_columns("tensor", "shape", "what it is")

    def show_report(self, report: Any, pending: bool) -> None:
        """report: an engine.shapes.ShapeReport; pending: it is for the form's settings, not yet applied."""
        self.clear()
        self.rows_shown = []
        for tensor in report.tensors:
            shape = format_shape(tensor.shape)
            self.add_row(tensor.name, shape, SHORT_MEANINGS.get(tensor.name, tensor.meaning))
            self.rows_shown.append((tensor.name, shape))
        parent = self.parent
        if isinstance(parent, Widget):
            title = f"Shapes: {report.cell.upper()}"
            parent.border_title = title + ("  (form settings, F7 applies)" if pending else "")
            # The book's print(Y.shape, len(state_new), state_new[0].shape), without the torch.Size noise.
            parent.border_subtitle = "book: " + report.book_line.replace("torch.Size", "")
