"""Next-character view: step through a generated text and see, at each character, what the model weighed.

Opened from the generate box (F4). It explains the text the box shows (the distributions the model gives
now at each of its positions) or, before anything was generated, generates one explaining as it goes.
↑/↓ move through the characters; the bars show the top candidates, the chosen one in green; a loop that
greedy decoding fell into is underlined in yellow. The characters before the selected one are shaded by their
saliency for its prediction (engine/lab/saliency.py: the gradient of its log-probability with respect to each
earlier input), and the effective context, the characters back that hold 90 % of it, is named.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Static

from engine.data.corpus import visible
from engine.errors import RnnTuiError, first_line
from tui.app.screens.model_source import ModelSource

if TYPE_CHECKING:  # engine.explain imports torch, which the app loads later, in a thread
    from engine.explain import ExplainStep, Loop
    from engine.lab.saliency import Saliency
    from tui.app.hosts import ScreenHost

TOP_K = 8
MAX_EXPLAINED = 1_000  # rows in the table: a longer text is explained in its first 1,000 characters
BAR_WIDTH = 30
SALIENCY_DELAY = 0.15  # seconds the selection stays before its saliency is computed
SALIENT = (255, 200, 0)  # the most salient earlier character's background; the others fade towards SHADE_FLOOR
SHADE_FLOOR = (70, 70, 70)


def saliency_style(weight: float) -> Style | None:
    """The background of an earlier character whose saliency is weight (0…1) of the largest; None when negligible."""
    if weight < 0.02:
        return None
    red, green, blue = (round(f + (t - f) * weight) for f, t in zip(SHADE_FLOOR, SALIENT, strict=True))
    return Style(bgcolor=Color.from_rgb(red, green, blue), color="black" if weight > 0.4 else "white")


def probability_bars(step: ExplainStep, width: int = BAR_WIDTH) -> Text:
    """The top candidates of one step as horizontal bars, the chosen one green (and added if outside the top)."""
    shown = Text()
    for candidate in step.candidates:
        chosen = candidate.char == step.chosen
        style = "bold green" if chosen else ""
        cells = round(candidate.probability * width)
        shown.append(f"{visible(candidate.char):<2}", style=style)
        shown.append(" " + "█" * cells + "·" * (width - cells), style="green" if chosen else "cyan")
        shown.append(f" {candidate.probability:6.1%}", style=style)
        shown.append("  ← chosen\n" if chosen else "\n", style=style)
    if step.rank > len(step.candidates):
        shown.append(f"{visible(step.chosen):<2}", style="bold green")
        shown.append(f" chosen with {step.probability:.2%}: only the #{step.rank} most likely\n", style="green")
    shown.append(f"entropy {step.entropy:.2f} nats", style="dim")
    return shown


class NextCharScreen(ModalScreen[None]):
    """The text on top, the selected character's candidates in the middle, every step in a table below."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f4,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    NextCharScreen { align: center middle; }
    #next-box { width: 96%; height: 94%; border: round $accent; background: $surface; padding: 0 1; }
    #next-text { height: auto; max-height: 6; }
    #next-loop { height: auto; display: none; }
    #next-detail { height: auto; margin: 1 0 0 0; }  /* the table's header row follows: no blank line, more rows */
    #next-steps { height: 1fr; }
    #next-footer { height: 1; color: $text-muted; }
    """

    def __init__(
        self,
        source: Callable[[], ModelSource],
        prefix: str,
        text: str | None,
        length: int,
        temperature: float | None,
    ) -> None:
        super().__init__()
        self.source = source
        self.prefix = prefix
        self.text = text
        self.length = length
        self.temperature = temperature
        self.steps: list[ExplainStep] = []
        self.full_text = ""
        self.start = 0  # where the explained characters begin (after the prefix)
        self.loop: Loop | None = None
        self.error: str | None = None
        self.text_shown = Text()  # what the text and detail panes show now
        self.detail_shown = Text()
        self.model_source: ModelSource | None = None  # the weights explained, which saliency reads too
        self.saliency: Saliency | None = None  # of the selected step, once computed
        self.selected = 0
        self._saliency_timer: Timer | None = None  # starts the selected step's saliency once the keys pause

    def compose(self) -> ComposeResult:
        with Vertical(id="next-box"):
            yield Static(Text("explaining…", style="dim"), id="next-text")
            # The loop note on a line of its own (the border's subtitle would cut it at 80 columns).
            yield Static("", id="next-loop")
            yield Static("", id="next-detail")
            yield DataTable(id="next-steps", cursor_type="row", zebra_stripes=True)
            yield Static("↑/↓ step · earlier characters shaded by saliency · Esc closes", id="next-footer")

    def on_mount(self) -> None:
        self.query_one("#next-box").border_title = "Next character"
        table = self.query_one(DataTable)
        table.add_columns("#", "chose", "p", "rank", f"top {TOP_K}")
        self.run_worker(self._explain, thread=True, exit_on_error=False, group="explain")

    def _explain(self) -> None:
        try:
            from engine.data.convert import resolve_prefix
            from engine.explain import explain_generation, explain_text

            source = self.source()
            self.model_source = source
            prefix, _ = resolve_prefix(self.prefix, source.vocab.char_to_idx)
            if self.text and self.text.startswith(prefix) and len(self.text) > len(prefix):
                text = self.text[: len(prefix) + MAX_EXPLAINED]
                steps = explain_text(source.model, source.vocab, text, len(prefix), self.temperature, TOP_K)
                how = f"the generated text, as the {source.label} see it"
                if len(text) < len(self.text):
                    how += f" (its first {MAX_EXPLAINED:,} characters after the prefix)"
            else:
                from engine.generate import fresh_generator

                length = min(self.length or 50, MAX_EXPLAINED)
                # Its own random generator, as the generate box's: drawing from torch's global one would shift
                # the dropout masks of a run training meanwhile.
                generator = fresh_generator()
                steps = explain_generation(
                    source.model, source.vocab, prefix, length, self.temperature, None, TOP_K, generator
                )
                text = prefix + "".join(step.chosen for step in steps)
                how = f"generated now with the {source.label}"
                if length < self.length:
                    how += f" (the first {length:,} of {self.length:,} characters)"
        except RnnTuiError as exc:
            self.app.call_from_thread(self.show_error, str(exc))
        except Exception as exc:  # never a traceback: one line in the screen
            self.app.call_from_thread(self.show_error, f"could not explain: {first_line(exc)}")
        else:
            self.app.call_from_thread(self.show_steps, text, len(prefix), steps, how)

    def show_error(self, message: str) -> None:
        self.error = message
        self.query_one("#next-text", Static).update(Text(message, style="bold red"))

    def show_steps(self, text: str, start: int, steps: Sequence[ExplainStep], how: str) -> None:
        from engine.explain import describe_loop, find_loop

        self.full_text, self.start, self.steps = text, start, list(steps)
        self.loop = find_loop(text, start=start)
        mode = "greedy" if self.temperature is None else f"temperature {self.temperature:g}"
        self.query_one("#next-box").border_subtitle = f"{how}; {mode}"
        loop_line = self.query_one("#next-loop", Static)
        loop_line.update(Text(describe_loop(text, self.loop) if self.loop is not None else "", style="yellow"))
        loop_line.display = self.loop is not None
        table = self.query_one(DataTable)
        table.clear()
        for number, step in enumerate(self.steps, start=1):
            candidates = "  ".join(f"{visible(c.char)} {c.probability:.2f}" for c in step.candidates)
            table.add_row(
                str(number),
                Text(visible(step.chosen), style="bold green" if step.rank == 1 else "bold yellow"),
                f"{step.probability:.3f}",
                str(step.rank),
                candidates,
            )
        if not self.steps:
            self.query_one("#next-text", Static).update(Text("nothing was generated: the length is 0", style="dim"))
            return
        table.focus()
        self.select(0)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self.steps):
            self.select(event.cursor_row)

    def select(self, index: int) -> None:
        step = self.steps[index]
        self.selected = index
        self.saliency = None
        self.show_selected()
        if self._saliency_timer is not None:
            self._saliency_timer.stop()
        if step.position >= 1 and self.model_source is not None:
            # After a pause in the keys: a thread cannot be stopped once started, so holding ↓ must not start one
            # backward pass per row it passes (they would compete with training for the cores).
            self._saliency_timer = self.set_timer(SALIENCY_DELAY, lambda: self.start_saliency(step.position))

    def start_saliency(self, position: int) -> None:
        self._saliency_timer = None
        if self.model_source is None or self.steps[self.selected].position != position:
            return
        source, text = self.model_source, self.full_text
        self.run_worker(
            lambda: self._saliency(source, text, position),
            thread=True,
            exclusive=True,
            exit_on_error=False,
            group="saliency",
        )

    def _saliency(self, source: ModelSource, text: str, position: int) -> None:
        from textual.worker import get_current_worker

        try:
            from engine.lab.saliency import saliency

            result = saliency(source.model, source.vocab, text, position)
        except Exception as exc:  # a detail of the view: the rest of the screen stays
            message = first_line(exc)
            self.app.call_from_thread(self.show_saliency_error, message)
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show_saliency, position, result)

    def show_saliency(self, position: int, result: Saliency) -> None:
        if self.steps and self.steps[self.selected].position == position:  # still the selected one
            self.saliency = result
            self.show_selected()

    def show_saliency_error(self, message: str) -> None:
        self.detail_shown.append(f"\nsaliency: {message}", style="red")
        self.query_one("#next-detail", Static).update(self.detail_shown)

    def show_selected(self) -> None:
        step = self.steps[self.selected]
        self.text_shown = self.render_text(step.position)
        self.query_one("#next-text", Static).update(self.text_shown)
        detail = Text()
        before = visible(self.full_text[max(0, step.position - 12) : step.position])
        detail.append(f"after “…{before}” the model expected:\n", style="bold")
        detail.append_text(probability_bars(step))
        if self.saliency is not None:
            detail.append(
                f"\neffective context: {self.saliency.effective_context} characters back hold 90 % of the saliency",
                style="bold yellow",
            )
        elif step.position >= 1:
            detail.append("\nsaliency: computing…", style="dim")
        self.detail_shown = detail
        self.query_one("#next-detail", Static).update(detail)

    def render_text(self, cursor: int) -> Text:
        """The whole text: prefix dim, the selected character reversed, a loop underlined."""
        shown = Text()
        salient = self.saliency.saliency if self.saliency is not None else ()
        offset = cursor - len(salient)  # the context read ends just before the cursor (a long one, truncated)
        top = max(salient, default=0.0)
        for position, char in enumerate(self.full_text):
            inside = offset <= position < cursor and top > 0
            shade = saliency_style(salient[position - offset] / top) if inside else None
            if shade is not None:
                shown.append(visible(char), style=shade)
                continue
            style = "dim" if position < self.start else ""
            if self.loop is not None and position >= self.loop.start + len(self.loop.unit):
                style += " underline yellow"
            if position == cursor:
                style += " reverse bold"
            shown.append(visible(char), style=style.strip())
        return shown


def open_next_char(app: ScreenHost) -> None:
    """F4: explain the generate box's text (or, before any, a generation from its settings)."""
    from textual.widgets import Input

    from tui.app.screens.model_source import current_model
    from tui.app.widgets.generate import parse_length, parse_temperature

    box = app.main.generate_box
    try:
        length = parse_length(box.query_one("#gen-length", Input).value)
        temperature = parse_temperature(box.query_one("#gen-temperature", Input).value)
    except ValueError as exc:
        box.show_error(str(exc))
        return
    prefix = box.query_one("#prefix", Input).value
    app.push_screen(NextCharScreen(lambda: current_model(app.run_control), prefix, box.last_text, length, temperature))
