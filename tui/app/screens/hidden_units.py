"""Hidden-unit view: a text coloured by one hidden unit's activation, as in Karpathy's "Visualizing RNNs".

The state after reading each character colours that character: red where the unit is positive, blue where
negative, white near zero. The text is the generated sample or a stretch of the corpus; the unit is typed
in, or picked from the suggestions (units that vary most, that fire on a space = a line break, or that
anticipate one). For an LSTM the cell state c can be shown as well as h; for a GRU or an LSTM, a gate unit too
(its value from 0, closed, blue, to 1, open, red; recomputed from the weights by engine/lab/gates.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from engine.data.corpus import SPACE_MARK, visible
from engine.errors import RnnTuiError, first_line
from tui.app.screens.model_source import ModelSource
from tui.app.widgets.ordered_input import OrderedInput

if TYPE_CHECKING:  # engine.activations imports torch, which the app loads later, in a thread
    from engine.activations import Activations
    from tui.app.hosts import ScreenHost

CORPUS_STRETCH = 600  # characters of the corpus shown: a few dozen lines of lyrics
SUGGESTIONS_PER_REASON = 3
POSITIVE = (214, 39, 40)  # red
NEGATIVE = (31, 119, 180)  # blue
NEUTRAL = (245, 245, 245)  # near white: a unit at zero


def activation_style(value: float, scale: float) -> Style:
    """Background from blue (−scale) through white (0) to red (+scale); dark text stays readable on all."""
    fraction = max(-1.0, min(1.0, value / scale)) if scale > 0 else 0.0
    target = POSITIVE if fraction > 0 else NEGATIVE
    weight = abs(fraction)
    red, green, blue = (round(n + (t - n) * weight) for n, t in zip(NEUTRAL, target, strict=True))
    foreground = Color.from_rgb(255, 255, 255) if weight > 0.6 else Color.from_rgb(0, 0, 0)
    return Style(color=foreground, bgcolor=Color.from_rgb(red, green, blue))


def coloured_text(text: str, values: list[float], scale: float) -> Text:
    shown = Text()
    for char, value in zip(text, values, strict=True):
        shown.append(visible(char), style=activation_style(value, scale))
    return shown


# The kind selector's labels; a gate is shown as value - 0.5 on a scale of 0.5: closed blue, half white, open red.
KIND_LABELS = {
    "h": "h: hidden state",
    "c": "c: cell state",
    "reset": "r: reset gate",
    "update": "z: update gate",
    "input": "i: input gate",
    "forget": "f: forget gate",
    "output": "o: output gate",
}
GATE_KINDS = ("reset", "update", "input", "forget", "output")  # engine.activations' (which loads torch: not here)
GATE_CENTRE = 0.5


def gate_legend() -> Text:
    shown = Text("gate value: ")
    for value in (0.0, 0.1, 0.5, 0.9, 1.0):
        shown.append(f" {value:g} ", style=activation_style(value - GATE_CENTRE, GATE_CENTRE))
    shown.append("  (0: closed, 1: open)", style="dim")
    return shown


def legend(scale: float) -> Text:
    shown = Text("unit value: ")
    for value in (-1.0, -0.5, 0.0, 0.5, 1.0):
        shown.append(f" {value * scale:+.2g} ", style=activation_style(value * scale, scale))
    shown.append(f"   {SPACE_MARK} = a space, i.e. a line break in the lyrics", style="dim")
    return shown


class HiddenUnitsScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f9", "dismiss", "Close"),
        Binding("left_square_bracket", "step_unit(-1)", "Previous unit"),
        Binding("right_square_bracket", "step_unit(1)", "Next unit"),
    ]
    DEFAULT_CSS = """
    HiddenUnitsScreen { align: center middle; }
    #units-box { width: 96%; height: 94%; border: round $accent; background: $surface; padding: 0 1; }
    #units-controls { height: 3; }
    #units-controls Label { padding: 1 0 0 1; color: $text-muted; }
    /* All four fit at 80 columns (72 cells inside the box): the source takes what the others leave. */
    #units-controls SelectCurrent { padding: 0 1; }
    #units-source { width: 1fr; max-width: 34; }
    #units-layer { width: 13; }
    #units-kind { width: 21; }
    #units-unit { width: 9; }
    #units-body { height: 1fr; }
    #units-suggestions { width: 44; height: 1fr; }
    #units-scroll { width: 1fr; height: 1fr; padding: 0 1; }
    #units-info, #units-legend { height: auto; }
    #units-footer { height: 1; color: $text-muted; }
    """

    def __init__(self, source: Callable[[], ModelSource], sample: str | None) -> None:
        super().__init__()
        self.source = source
        self.sample = sample
        self.model_source: ModelSource | None = None
        self.activations: Activations | None = None  # of the current text
        self.unit = 0
        self.coloured = Text()  # the text as last coloured
        self.error: str | None = None
        self.text_name = "the text"  # what the activations read: the sample, or the training text's start

    def compose(self) -> ComposeResult:
        sources = [(f"corpus ({CORPUS_STRETCH} chars)", "corpus")]  # short: one line at 80 columns
        if self.sample:
            sources.append(("generated sample", "sample"))
        with Vertical(id="units-box"):
            with Horizontal(id="units-controls"):
                yield Select(sources, value=sources[0][1], allow_blank=False, id="units-source")
                yield Select([("layer 1", 0)], value=0, allow_blank=False, id="units-layer")
                yield Select([("h: hidden state", "h")], value="h", allow_blank=False, id="units-kind")
                yield Label("unit")
                yield OrderedInput("0", id="units-unit", restrict=r"\d*", max_length=5)
            with Horizontal(id="units-body"):
                yield OptionList(id="units-suggestions")
                with VerticalScroll(id="units-scroll"):
                    yield Static(Text("reading the text…", style="dim"), id="units-info")
                    yield Static("", id="units-text")
            yield Static("", id="units-legend")
            yield Static("[ ] previous / next unit   Enter on a suggestion shows it   Esc closes", id="units-footer")

    def on_mount(self) -> None:
        self.query_one("#units-box").border_title = "Hidden units"
        self.read(self.query_one("#units-source", Select).value)

    # ----- reading the activations (a thread: the model runs over the text) -----

    def read(self, which: object) -> None:  # the source Select's value: "corpus" or "sample"
        self.run_worker(lambda: self._read(str(which)), thread=True, exclusive=True, exit_on_error=False, group="units")

    def _read(self, which: str) -> None:
        try:
            from engine.activations import read_activations

            source = self.model_source or self.source()
            self.model_source = source
            if which == "sample" and self.sample:
                text, self.text_name = self.sample, "the sample"
            elif source.corpus_text:
                text = source.corpus_text[:CORPUS_STRETCH]
                self.text_name = f"the training text's first {len(text):,} characters"
            else:
                raise RnnTuiError("no corpus is loaded with these weights: generate a sample (F2) and show that")
            unknown = source.vocab.unknown(text)
            if unknown:  # a sample from other weights may hold characters these do not know
                text = "".join(c for c in text if c not in unknown)
            activations = read_activations(source.model, source.vocab, text)
        except RnnTuiError as exc:
            self.app.call_from_thread(self.show_error, str(exc))
        except Exception as exc:
            self.app.call_from_thread(self.show_error, f"could not read the activations: {first_line(exc)}")
        else:
            self.app.call_from_thread(self.show_activations, activations)

    def show_error(self, message: str) -> None:
        self.error = message
        self.query_one("#units-info", Static).update(Text(message, style="bold red"))

    def show_activations(self, activations: Activations) -> None:
        self.activations = activations
        self.error = None
        layer_select = self.query_one("#units-layer", Select)
        kind_select = self.query_one("#units-kind", Select)
        with self.prevent(Select.Changed):
            layer_select.set_options([(f"layer {n + 1}", n) for n in range(activations.layers)])
            layer_select.value = activations.layers - 1  # the top layer: the one the dense layer reads
            kind_select.set_options([(KIND_LABELS[kind], kind) for kind in activations.kinds])
            kind_select.value = "h"
        self.suggest()

    # ----- what is shown -----

    @property
    def layer_index(self) -> int:  # not `layer`: Widget.layer is Textual's CSS layer
        value = self.query_one("#units-layer", Select).value
        return value if isinstance(value, int) else 0

    @property
    def kind(self) -> str:
        value = self.query_one("#units-kind", Select).value
        return value if isinstance(value, str) else "h"

    def suggest(self) -> None:
        """Fill the suggestions for the chosen layer and state, and show the first."""
        if self.activations is None:  # not read yet (its callers wait for it)
            return
        from engine.activations import suggest_units

        suggestions = suggest_units(self.activations, self.kind, self.layer_index, SUGGESTIONS_PER_REASON)
        options = self.query_one("#units-suggestions", OptionList)
        options.clear_options()
        options.add_options([Option(s.describe(), id=str(s.unit)) for s in suggestions])
        self.suggestions = suggestions
        self.show_unit(suggestions[0].unit if suggestions else 0)

    def show_unit(self, unit: int) -> None:
        if self.activations is None:
            return
        from engine.activations import display_scale

        hidden = self.activations.hidden
        if not 0 <= unit < hidden:
            self.show_error(f"unit must be between 0 and {hidden - 1}, got {unit}")
            return
        self.unit = unit
        unit_input = self.query_one("#units-unit", Input)
        if unit_input.value != str(unit):
            unit_input.value = str(unit)
        values = self.activations.unit(unit, self.kind, self.layer_index)
        gate = self.kind in GATE_KINDS
        scale = GATE_CENTRE if gate else display_scale(values)
        source = self.model_source.label if self.model_source else ""
        info = Text()
        info.append(f"unit {unit} of {hidden}", style="bold")
        info.append(f"  ({self.kind}, layer {self.layer_index + 1}, {self.activations.cell.upper()}, {source})")
        info.append(f"  min {min(values, default=0):+.2f}  max {max(values, default=0):+.2f}", style="dim")
        for suggestion in getattr(self, "suggestions", []):
            if suggestion.unit == unit:
                info.append(f"\n{suggestion.describe()}", style="italic")
        if gate:
            low = sum(v < 0.1 for v in values) / len(values) if values else 0.0
            high = sum(v > 0.9 for v in values) / len(values) if values else 0.0
            # One unit over the text shown: not the layer's share over held-out stretches (lab gates, --metrics).
            info.append(
                f"\n{self.kind} gate, this unit: closed (< 0.1) {low:.0%}, open (> 0.9) {high:.0%} of {self.text_name}"
            )
        self.query_one("#units-info", Static).update(info)
        shown = [v - GATE_CENTRE for v in values] if gate else values
        self.coloured = coloured_text(self.activations.text, shown, scale)
        self.query_one("#units-text", Static).update(self.coloured)
        self.query_one("#units-legend", Static).update(gate_legend() if gate else legend(scale))

    # ----- controls -----

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "units-source":
            self.read(event.value)
        elif self.activations is not None:
            self.suggest()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.show_unit(int(event.option.id))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.show_unit(int(event.value))
            self.query_one("#units-scroll").focus()  # out of the digits box, so [ and ] step at once

    def action_step_unit(self, delta: int) -> None:
        if self.activations is not None:
            self.show_unit((self.unit + delta) % self.activations.hidden)


def open_hidden_units(app: ScreenHost) -> None:
    """F9: the hidden units over the generate box's text, or over the corpus."""
    from tui.app.screens.model_source import current_model

    app.push_screen(HiddenUnitsScreen(lambda: current_model(app.run_control), app.main.generate_box.last_text))
