"""Lab pane: the data-size curve (engine/lab/datasize.py): test perplexity of a model with the current settings and of
the best counting model, against training characters, on both shipped corpora. Trains its own small runs in a thread
worker (Enter starts it, Esc cancels it with the Lab); every point is cached, so a curve asked for again is at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual.worker import get_current_worker

from engine.errors import RnnTuiError, first_line
from tui.app.screens.lab_pane import LabPane

if TYPE_CHECKING:
    from engine.lab.datasize import Curve

# The current run's settings the curve's model takes (its epochs and seed are the curve's own: few, and fixed).
MODEL_SETTINGS = (
    "cell", "hidden", "layers", "dropout", "optimizer", "lr", "clip", "weight_decay", "batch_size", "num_steps",
    "sampling", "state", "io_dropout", "variational", "embed", "tie", "decay", "schedule", "eval_stretch",
)  # fmt: skip


class DatasizePane(LabPane):
    NAME: ClassVar[str] = "datasize"
    TITLE: ClassVar[str] = "Data size"
    HELP: ClassVar[str] = (
        "when does the model beat counting? Test perplexity against training characters (5 k, 10 k, 20 k, 40 k, all) "
        "on the lyrics and on The Time Machine: a model with the current settings (10 epochs, seed 0) and the best "
        "counting model (modified Kneser–Ney, its n chosen on held-out), the same held-out and test text at every "
        "size. Enter starts it (minutes on 2 cores; each point is cached, so it is at once the next time); the "
        "ratio says how far the model is from counting, and the last line whether the curves cross or the gap "
        "closes. Twin: rnn-tui lab datasize."
    )
    BINDINGS: ClassVar[list[Binding]] = [Binding("enter", "measure", "Measure", show=False)]  # type: ignore[assignment]
    DEFAULT_CSS = """
    DatasizePane { height: 1fr; }
    """
    can_focus = True

    curves: list[Curve]
    progress: str = ""

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("Enter measures the curve with the current settings", style="dim"), id="datasize-view")

    def shown(self) -> None:
        self.focus()

    def overrides(self) -> dict[str, object]:
        config = self.rnn_app.run_control.config or self.rnn_app.run_control.base_config
        return {name: getattr(config, name) for name in MODEL_SETTINGS}

    def action_measure(self) -> None:
        self.curves = []
        self.measure(self.overrides())

    @work(thread=True, exclusive=True, exit_on_error=False, group="lab-datasize")
    def measure(self, overrides: dict[str, object]) -> None:
        from engine.data.corpus import find_corpus
        from engine.errors import CorpusError
        from engine.lab.datasize import CORPORA, DEFAULT_SIZES, datasize_curve, default_cache_dir, describe_run

        worker = get_current_worker()
        try:
            lyrics = find_corpus(None)
        except CorpusError:
            lyrics = None
        curves: list[Curve] = []
        notes: list[str] = []
        for name in CORPORA:
            if name == "lyrics" and lyrics is None:
                notes.append("lyrics: not on this machine (set $RNN_TUI_CORPUS or put them in ./data/): left out")
                continue
            ran = describe_run(name, overrides, DEFAULT_SIZES)

            def progress(line: str, ran: str = ran, done: tuple[Curve, ...] = tuple(curves)) -> None:
                if not worker.is_cancelled:
                    self.app.call_from_thread(self._show, list(done), f"{ran}\n{line}")

            try:
                curve = datasize_curve(
                    name, overrides, DEFAULT_SIZES, lyrics, default_cache_dir(), 1, progress,
                    lambda: worker.is_cancelled,
                )  # fmt: skip
            except RnnTuiError as exc:
                notes.append(f"{name}: {first_line(exc)}")
                continue
            curves = [*curves, curve]
            if worker.is_cancelled:
                return
        done = "done: Enter measures again (cached points at once)"
        self.app.call_from_thread(self._show, curves, "\n".join([*notes, done]))

    def _show(self, curves: list[Curve], progress: str) -> None:
        self.curves, self.progress = curves, progress
        self.query_one("#datasize-view", Static).update(Group(*[curve_table(c) for c in curves], Text(progress)))


def curve_table(curve: Curve) -> Group:
    title = Text(f"{curve.corpus}: test perplexity ({curve.test_chars:,} test characters)", style="bold")
    shown = Table(box=None, pad_edge=False)
    for name in ("training chars", "model", "counting", "n", "ratio"):
        shown.add_column(name, justify="right")
    for p in curve.points:
        ratio = f"×{p.model / p.counting:.2f}" if p.model is not None else "-"
        model = f"{p.model:,.2f}" if p.model is not None else "-"
        shown.add_row(f"{p.train_chars:,}", model, f"{p.counting:,.2f}", str(p.counting_order), ratio)
    return Group(title, shown, Text(curve.trend(), style="italic"), Text(""))
