"""Lab pane: n-gram baselines (engine/lab/ngram.py) beside the model's best held-out perplexity."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual.worker import get_current_worker

from engine.errors import RnnTuiError, first_line
from tui import baselines
from tui.app.screens.lab_pane import LabPane

if TYPE_CHECKING:
    from engine.lab.ngram import NgramTable

BAR = 24


class NgramPane(LabPane):
    NAME: ClassVar[str] = "ngram"
    TITLE: ClassVar[str] = "N-gram baselines"
    HELP: ClassVar[str] = (
        "what counting characters gets: n-gram models (n = 1 … 8: the next character from the n − 1 before it) fitted "
        "on the training text with modified Kneser–Ney smoothing (three discounts per order), scored on the same "
        "held-out characters as the model, with the same rule for characters never seen in training; the held-out "
        "text chooses n, the test text reports it. Beside them, the run's best held-out perplexity (and its test "
        "figure once the run has ended): a model that does not beat the 2-gram has learnt less than counting pairs of "
        "characters (the book's run: 224 at its best, the 2-gram 143, the 7-gram 129). The best n-gram and the bigram "
        "are also lines on the Perplexity plot, the Status panel gives the verdict, and F10 lists them. Twin: "
        "rnn-tui lab ngram."
    )
    DEFAULT_CSS = """
    NgramPane { height: 1fr; }
    """

    view: Table | Text | None = None  # what the pane shows now (for tests): the table, or why there is none

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("counting characters…", style="dim"), id="ngram-table")

    def shown(self) -> None:
        runs = self.rnn_app.run_control
        test = runs.status.test
        self.compute(runs.status.best_val, runs.status.val_perplexity, test.perplexity if test else None)

    @work(thread=True, exclusive=True, exit_on_error=False, group="lab-ngram")
    def compute(self, best: tuple[int, float] | None, latest: float | None, test: float | None = None) -> None:
        worker = get_current_worker()
        try:
            trainer = self.rnn_app.run_control.trainer
            if trainer is None:
                raise RnnTuiError("the run is still loading; try again in a moment")
            table = baselines.compute(trainer)
            if table is None:
                raise RnnTuiError("this run has no held-out text (held-out 0): nothing to score the baselines on")
        except RnnTuiError as exc:
            message = first_line(exc)
            if not worker.is_cancelled:
                self.app.call_from_thread(self._show, Text(message, style="bold red"))
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show, ngram_view(table, best, latest, test))

    def _show(self, shown: Text | Table) -> None:
        self.view = shown
        self.query_one("#ngram-table", Static).update(shown)


def ngram_view(
    table: NgramTable, best: tuple[int, float] | None, latest: float | None, test: float | None = None
) -> Table:
    """The table: each n-gram's held-out perplexity as a number and a bar (log scale), its test perplexity, then the
    model's (test: the run's test figure, once it has ended)."""
    rows: list[tuple[str, float, str]] = [(f"{n}-gram", v, "") for n, v in zip(table.n, table.held_out, strict=True)]
    tests = {f"{n}-gram": f"{v:,.2f}" for n, v in zip(table.n, table.test, strict=True)}
    if best is not None:
        rows.append(("model, best", best[1], f"epoch {best[0]}"))
        if test is not None:
            tests["model, best"] = f"{test:,.2f}"
    if latest is not None and math.isfinite(latest):
        rows.append(("model, now", latest, ""))
    finite = [v for _, v, _ in rows if math.isfinite(v) and v > 0]
    low, high = (min(finite), max(finite)) if finite else (1.0, 2.0)
    shown = Table(
        title=f"held-out perplexity · {table.targets:,} characters, {table.unseen:,} unseen left out",
        title_justify="left",
        box=None,
        pad_edge=False,
    )
    shown.add_column("model")
    shown.add_column("held-out", justify="right")
    if table.test:
        shown.add_column("test", justify="right")
    shown.add_column(f"(log scale, {low:,.0f} to {high:,.0f})")
    shown.add_column("")
    _, best_n = table.best()
    for name, value, note in rows:
        cells = BAR if high <= low else 1 + round((BAR - 1) * math.log(value / low) / math.log(high / low))
        model = name.startswith("model")
        style = "bold" if model else ""
        if model and note and value > best_n:
            note += " · counting wins"
        elif model and note:
            note += " · beats counting"
        bar = Text("█" * cells, style="cyan" if not model else "magenta")
        if table.test:
            shown.add_row(Text(name, style=style), f"{value:,.2f}", tests.get(name, ""), bar, note)
        else:
            shown.add_row(Text(name, style=style), f"{value:,.2f}", bar, note)
    chosen = table.best_test()
    shown.caption = f"smoothing: {table.smoothing}" + (
        f"\nn chosen on held-out: {chosen[0]}; its test figure {chosen[1]:,.2f} is what a model is measured against"
        if chosen
        else ""
    )
    shown.caption_justify = "left"
    return shown
