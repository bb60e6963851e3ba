"""Lab pane: the memory horizon (engine/lab/horizon.py), perplexity by the context read from a zero state."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import Static
from textual.worker import get_current_worker

from engine.errors import RnnTuiError, first_line
from engine.events import TRAP_RATIO, is_trap
from tui.app.screens.lab_pane import LabPane
from tui.app.screens.model_source import current_model
from tui.app.widgets.plot import compact_number, log_ticks

TRAIN_MARK, HELD_OUT_MARK = "⣀", "•"  # the curves' markers, as the legend names them

if TYPE_CHECKING:
    from textual_plotext import Plot

    from engine.lab.horizon import Horizon


class HorizonPane(LabPane):
    NAME: ClassVar[str] = "horizon"
    TITLE: ClassVar[str] = "Memory horizon"
    HELP: ClassVar[str] = (
        "perplexity of the training text (braille) and the held-out text (•) when every character is predicted from "
        "at most k characters read from a zero state, k = 1, 2, 4, … up to the whole text in one pass (log scale "
        "both ways); the grey line is the training perplexity. The left end is a cold start, the slope is how far "
        "back the model remembers, and the right end is the text read as `--state epoch` training reads it: close "
        "to the training figure, the model does from a zero state what training says; "
        f"×{TRAP_RATIO:g} or more above it, the model "
        "leans on a state it never has (the carried-state trap: one threshold, the carried-state lesson's too). A "
        "held-out curve that rises with context is memorisation's signature (the longer the model reads new text, the "
        "surer it is of the old), and a line under the figures says so. The Status panel's fresh figure is the point "
        "at k = 35 (the cold start) and its whole-text figure the right end. Twin: rnn-tui lab horizon."
    )
    DEFAULT_CSS = """
    HorizonPane { height: 1fr; }
    HorizonPane #horizon-summary { height: auto; max-height: 6; }
    HorizonPane #horizon-chart { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.horizon: Horizon | None = None
        self.train_perplexity: float | None = None
        self.label = ""

    def compose(self) -> ComposeResult:
        from tui.app.widgets.plot_chart import Chart

        yield Static(Text("reading the text from a zero state…", style="dim"), id="horizon-summary")
        yield Chart(on_resize=self._resized, draw=self.draw_figure)

    def _resized(self) -> None:
        for chart in self.query("Chart"):
            chart.refresh()

    def shown(self) -> None:
        self.query_one("#horizon-summary", Static).update(Text("reading the text from a zero state…", style="dim"))
        self.compute(self.rnn_app.run_control.status.perplexity)

    @work(thread=True, exclusive=True, exit_on_error=False, group="lab-horizon")
    def compute(self, train: float | None) -> None:
        worker = get_current_worker()
        try:
            from engine.lab.horizon import horizon

            runs = self.rnn_app.run_control
            source = current_model(runs)
            trainer = runs.trainer
            if source.corpus_text is None or trainer is None:
                raise RnnTuiError("no corpus is loaded with these weights")
            held = trainer.corpus.held_out
            found = horizon(source.model, source.vocab, source.corpus_text, held)
        except RnnTuiError as exc:
            message = first_line(exc)
            if not worker.is_cancelled:
                self.app.call_from_thread(self._show_error, message)
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show, found, train, source.label)

    def _show_error(self, message: str) -> None:
        self.query_one("#horizon-summary", Static).update(Text(message, style="bold red"))

    def _show(self, found: Horizon, train: float | None, label: str) -> None:
        self.horizon, self.train_perplexity, self.label = found, train, label
        self.query_one("#horizon-summary", Static).update(summary(found, train, label))
        for chart in self.query("Chart"):
            chart.refresh()

    def draw_figure(self, plt: Plot, width: int, height: int) -> None:
        plt.clear_data()
        plt.clear_figure()
        found = self.horizon
        if found is None:
            return
        plt.xaxes(True, False)
        plt.yaxes(True, False)
        plt.xscale("log")
        plt.yscale("log")
        xs = list(found.context)
        values = [v for v in (*found.train, *found.held_out) if math.isfinite(v) and v > 0]
        train = self.train_perplexity
        if train is not None and math.isfinite(train) and train > 0:
            plt.hline(train, "gray")
            values.append(train)
        if found.held_out:
            plt.plot(xs, list(found.held_out), marker=HELD_OUT_MARK)
        plt.plot(xs, list(found.train), marker="braille")
        # Ticks a few columns apart, the whole text's (the last) always among them.
        picked = xs[:-1][:: max(1, len(xs) // max(2, (width - 6) // 8))]
        while picked and math.log(xs[-1] / picked[-1]) < math.log(xs[-1]) * 6 / max(8, width - 6):
            picked.pop()  # too close to the last tick: its label would run into it
        picked.append(xs[-1])
        plt.xticks([float(k) for k in picked], [context_label(k) for k in picked])
        # Room past the whole text's point (plotext takes a log axis's limits as log10): its tick and label not cut.
        plt.xlim(0, math.log10(max(2, xs[-1]) * 1.3))
        if values:
            ticks = log_ticks(min(values), max(values), max(2, min(5, (height - 1) // 2)))
            plt.yticks(ticks, [compact_number(t) for t in ticks])
        plt.xlabel("characters read from a zero state")


def summary(found: Horizon, train: float | None, label: str) -> Text:
    """What was read (each text named), the legend on a line of its own, the curve's ends and the trap verdict
    (engine.events.TRAP_RATIO, as everywhere), and a caption when the held-out curve rises with context."""
    shown = Text()
    shown.append(f"{label} · training text {found.train_chars:,} chars · held-out text {found.held_out_chars:,}\n")
    shown.append(f"{TRAIN_MARK} training text  {HELD_OUT_MARK} held-out text  ─ training perplexity\n", style="dim")
    shown.append(f"k = 1: {found.train[0]:,.2f}  whole text: ")
    shown.append(f"{found.longest:,.2f}", style="bold")
    if train is not None and math.isfinite(train) and train > 0:
        ratio = found.longest / train
        shown.append(f"  train {train:,.2f} ({ratio:,.1f}×): ")
        if is_trap(found.longest, train):
            shown.append(f"×{TRAP_RATIO:g} or more, the carried-state trap", style="bold red")
        else:
            shown.append(f"under ×{TRAP_RATIO:g}, no trap", style="green")
    caption = found.caption()
    if caption:
        shown.append(f"\n{caption}", style="yellow")
    return shown


def context_label(k: int) -> str:
    """An x tick: 1, 64, 1k, 10k (short, so the whole text's tick at the right end is not cut)."""
    return str(k) if k < 1000 else compact_number(k)
