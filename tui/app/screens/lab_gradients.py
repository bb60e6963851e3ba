"""The lab's gradients-through-time pane: ‖∂ loss / ∂ h k steps back‖ on a log scale (engine/lab/gradients.py).

The current weights' curve, overlaid with the curves of the runs kept for F10: a kept run has no weights left, so
its curve is computed when it is kept (keep_curve, called by RunControl.keep_run; keep_checkpoint_curve for a
checkpoint loaded to generate; in a thread worker) and kept in RunControl.lab_curves by its origin ("run 2").
RNN, GRU and LSTM trained one after another are then side by side: a curve falling by orders of magnitude is a
vanishing gradient (an untrained RNN's, within a few dozen steps); a GRU whose update gate stays open keeps it flat.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static
from textual.worker import get_current_worker

from engine.errors import RnnTuiError, first_line
from tui.app.screens.lab_pane import LabPane
from tui.app.widgets.plot_chart import FigurePlot

if TYPE_CHECKING:  # torch-backed, or importing the app: annotations only
    from engine.data.corpus import Vocab
    from engine.lab.gradients import GradientsThroughTime
    from engine.model import CharRNN
    from engine.trainer import Trainer
    from tui.app.checkpoint_weights import CheckpointWeights
    from tui.app.hosts import RunsOnScreen

CURVE_COLOURS = ("blue+", "green+", "red+", "cyan+", "magenta+", "yellow", "gray", "orange")
CURVE_MARKERS = ("braille", "•", "x", "+")  # the curves told apart without colour too
# The same colours in Rich's names, and the markers as drawn: the info lines above the plot are its legend (plotext's
# own legend would hide the curves' start, where they differ least).
LEGEND_COLOURS = (
    "bright_blue",
    "bright_green",
    "bright_red",
    "bright_cyan",
    "bright_magenta",
    "yellow",
    "grey50",
    "dark_orange",
)
LEGEND_MARKERS = ("⠒⠒", "••", "xx", "++")
NOW = "now"  # the current weights' curve label
EPOCH_CHECK_SECONDS = 2.0  # how often an open pane looks for a new epoch to read (a read: ~0.2 s at 256 hidden units)


def lab_text(trainer: Trainer | None, corpus_text: str | None) -> str | None:
    """The text the pane reads: the run's held-out text, else the end of its training text."""
    from engine.lab.subject import LAB_HELD_OUT_CHARS

    if trainer is not None and trainer.corpus.held_out:
        return trainer.corpus.held_out
    text = trainer.corpus.text if trainer is not None else corpus_text
    return text[-LAB_HELD_OUT_CHARS:] if text else None


def lab_text_name(trainer: Trainer | None) -> str:
    """Which text lab_text reads: the held-out text, else (held-out off, or no run) the training text's end."""
    return "held-out" if trainer is not None and trainer.corpus.held_out else "training"


def keep_curve(runs: RunsOnScreen, origin: str) -> None:
    """The current run was kept for F10 as origin: compute its curve now, while its trainer (and weights) exist."""
    trainer = runs.trainer
    if trainer is not None:
        compute_kept_curve(runs, origin, lambda: (trainer.copy_model(), trainer.vocab, lab_text(trainer, None)))


def keep_checkpoint_curve(runs: RunsOnScreen, weights: CheckpointWeights) -> None:
    """A checkpoint was loaded to generate (its history just kept for F10): its curve over the run's held-out text,
    when it has the run's vocabulary (else there is no text it can be read on here, and it is kept without one)."""
    trainer = runs.trainer
    # Its entry in the run book: the latest checkpoint with its settings (the book keeps one of two equal runs).
    origin = next(
        (
            r.origin
            for r in reversed(runs.run_book.runs)
            if r.origin.startswith("checkpoint ") and r.config == weights.config
        ),
        None,
    )
    if trainer is not None and origin is not None and trainer.vocab == weights.vocab:
        model, vocab = weights.model, weights.vocab
        compute_kept_curve(runs, origin, lambda: (model, vocab, lab_text(trainer, None)))


def compute_kept_curve(
    runs: RunsOnScreen, origin: str, weights: Callable[[], tuple[CharRNN, Vocab, str | None]]
) -> None:
    """In a thread worker: the curve of weights() (a model nobody trains, its vocabulary, the text), kept by origin."""
    if origin in runs.lab_curves:
        return
    runs.lab_curves[origin] = None  # pending: a second keep of the same run computes nothing

    def compute() -> None:
        from engine.lab.gradients import gradients_through_time

        try:
            model, vocab, text = weights()
            if text is None:
                return
            curve = gradients_through_time(model, vocab, text)
        except Exception:  # a text too short for a window, or odd weights: the run is kept without a curve
            return
        if not get_current_worker().is_cancelled:
            runs.app.call_from_thread(runs.lab_curves.__setitem__, origin, curve)

    runs.app.run_worker(compute, thread=True, exit_on_error=False, group="lab-keep")


class GradientsChart(FigurePlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.curves: list[tuple[str, GradientsThroughTime]] = []
        self.drawn: list[str] = []  # labels of the curves drawn, for tests

    def draw_figure(self) -> None:
        """Set up afresh at every paint: plotext's build() changes a log-scale figure's data."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self.drawn = []
        plt.xlabel("k steps back")
        curves = [(label, curve) for label, curve in self.curves if drawable(curve.norm)]
        states = {curve.state for _, curve in curves}  # h, or an LSTM's (h, c)
        state = states.pop() if len(states) == 1 else "state (h; an LSTM's h, c)"
        plt.title(f"‖∂ loss / ∂ {state} k steps back‖, log scale")
        if not curves:
            return
        plt.yscale("log")
        values = [v for _, curve in curves for _, v in drawable(curve.norm)]
        ticks = decade_ticks(min(values), max(values), max(2, (self.size.height - 4) // 3))
        plt.yticks(ticks, [f"1e{round(math.log10(t))}" for t in ticks])  # plotext's own labels run 20 digits
        # The axis spans the decades the ticks bound (plotext takes a log axis's limits as log10): a curve within
        # one decade still has a label at each end, not one or none.
        plt.ylim(math.log10(ticks[0]), math.log10(ticks[-1]))
        longest = max(len(curve.norm) for _, curve in curves)
        x_ticks: list[float] = [k for k in (0, 10, 25, 50, 75, 100, 150, 200, 300, 500) if k < longest - 5]
        plt.xticks([*x_ticks, longest - 1])
        for index, (label, curve) in enumerate(self.curves):  # the index of the info line that names it
            points = drawable(curve.norm)
            if not points:
                continue
            plt.plot(
                [k for k, _ in points],
                [v for _, v in points],
                marker=CURVE_MARKERS[index % len(CURVE_MARKERS)],
                color=CURVE_COLOURS[index % len(CURVE_COLOURS)],
            )
            self.drawn.append(label)


def decade_ticks(low: float, high: float, count: int) -> list[float]:
    """Powers of ten from below low to above high, at most count of them, evenly spaced in the exponent."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    last = max(last, first + 1)  # a flat curve on a power of ten: still two ticks
    step = max(1, math.ceil((last - first) / max(1, count - 1)))
    exponents = list(range(last, first - 1, -step))
    if exponents[-1] > first:  # the bottom decade too: the axis starts there
        exponents.append(first)
    return [10.0**e for e in reversed(exponents)]


def drawable(norms: tuple[float, ...]) -> list[tuple[int, float]]:
    return [(k, v) for k, v in enumerate(norms) if math.isfinite(v) and v > 0]


def summary(label: str, curve: GradientsThroughTime) -> str:
    far = len(curve.norm) - 1
    radius = f", ρ(W_hh) {curve.spectral_radius[-1]:.2f}" if curve.spectral_radius else ""
    return f"{label}: {curve.cell.upper()}, at k = {far}: {curve.ratio(far):.2g} × k = 0{radius}"


class GradientsPane(LabPane):
    NAME = "gradients"
    TITLE = "Gradients through time"
    HELP = (
        "how much the loss at the last step of a 100-character window of held-out text still reaches the hidden "
        "state k steps back, ‖∂ loss / ∂ h_(T−k)‖ (an LSTM's state is h and c: the norm over both), averaged over "
        "the windows, on a log scale (§6.6); with held-out off, the training text's end, as the line above the plot "
        "says. A curve falling "
        "by orders of magnitude is a vanishing gradient: what happened that far back can no longer be learned from; "
        "a rising one, exploding. An untrained plain RNN's falls fastest; gates can hold it up (a GRU whose update "
        "gate stays open copies its state, and its curve stays flat). Runs kept for F10 (finished, stopped, replaced, "
        "or loaded to generate) are drawn beside the current weights, each named above the plot with its marker: "
        "train an RNN, then a GRU and an LSTM, to see them side by side. While it is open it follows training (the "
        "weights are read again after a new epoch, at most every 2 s). `rnn-tui lab gradients --checkpoint CKPT` "
        "prints the same figures."
    )
    DEFAULT_CSS = """
    GradientsPane { height: 1fr; }
    #gradients-info { height: auto; max-height: 5; }
    #gradients-plot { height: 1fr; min-height: 8; }
    """
    ERROR_STYLE: ClassVar[str] = "bold red"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.current: GradientsThroughTime | None = None
        self.error: str | None = None
        self.computed = 0  # how many computations finished (tests wait on it)
        self.computing = False
        self.epoch_read = -1  # the run's epoch when the curve on screen was computed
        self.text_name = "held-out"  # the text the curve on screen read (lab_text_name)

    def compose(self) -> ComposeResult:
        yield Static(Text("reading the current weights…", style="dim"), id="gradients-info")
        yield GradientsChart(id="gradients-plot")

    def on_mount(self) -> None:
        self.set_interval(EPOCH_CHECK_SECONDS, self._follow_training)

    def _follow_training(self) -> None:
        """Live: while the pane is on screen, a new epoch's weights are read again (one computation at a time)."""
        if self.computing or not self.screen.is_current or self.size.area == 0:
            return
        if self.rnn_app.run_control.status.epoch != self.epoch_read:
            self.shown()

    def shown(self) -> None:
        self.computing = True
        self.epoch_read = self.rnn_app.run_control.status.epoch
        self.run_worker(self._compute, thread=True, exclusive=True, exit_on_error=False, group="lab-gradients")

    def _compute(self) -> None:
        from engine.lab.gradients import gradients_through_time
        from tui.app.screens.model_source import current_model

        runs = self.rnn_app.run_control
        try:
            source = current_model(runs)
            text = lab_text(runs.trainer if source.corpus_text is not None else None, source.corpus_text)
            if text is None:
                raise RnnTuiError("no text to read with these weights: train on a corpus (F7) to see its gradients")
            curve = gradients_through_time(source.model, source.vocab, text)
            label = f"{NOW} ({source.label})"
            self.text_name = lab_text_name(runs.trainer if source.corpus_text is not None else None)
        except RnnTuiError as exc:
            message = str(exc)
            self.app.call_from_thread(self.show_error, message)
            return
        except Exception as exc:
            message = f"could not compute the gradients: {first_line(exc)}"
            self.app.call_from_thread(self.show_error, message)
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show_curve, label, curve)

    def show_error(self, message: str) -> None:
        self.error = message
        self.computed += 1
        self.computing = False
        self.query_one("#gradients-info", Static).update(Text(message, style=self.ERROR_STYLE))

    def show_curve(self, label: str, curve: GradientsThroughTime) -> None:
        self.current, self.error = curve, None
        runs = self.rnn_app.run_control
        book = runs.run_book
        curves: list[tuple[str, GradientsThroughTime]] = [(label, curve)]
        for name, run in zip(book.labels(), book.runs, strict=True):
            kept = runs.lab_curves.get(run.origin)
            # The run (or checkpoint) on screen, once kept, has the current weights: drawn once, as "now".
            if kept is not None and kept.norm != curve.norm:
                curves.append((name, kept))
        info = Text()
        info.append(
            f"mean of {curve.windows} windows of {curve.window} {self.text_name}-text characters · "
            f"{len(curves) - 1} other run{'s' * (len(curves) != 2)} kept (F10)\n",
            style="dim",
        )
        for index, (name, shown_curve) in enumerate(curves):
            colour = LEGEND_COLOURS[index % len(LEGEND_COLOURS)]
            info.append(LEGEND_MARKERS[index % len(LEGEND_MARKERS)] + " ", style=f"bold {colour}")
            info.append(summary(name, shown_curve) + "\n")
        self.query_one("#gradients-info", Static).update(info)
        chart = self.query_one(GradientsChart)
        chart.curves = curves
        chart.refresh()
        self.computed += 1
        self.computing = False
