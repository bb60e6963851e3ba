"""Status panel: what the run is doing, how far it is, how well, how fast, on what.

How well: the training perplexity (the book's number), and with held-out evaluation on the fresh-state and
held-out perplexities, the best held-out epoch so far, and the share of held-out characters left out of the
figure because training never saw them. With held-out evaluation off it reads as it always has.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from engine.config import TrainConfig
from engine.events import HINT_PREFIX, is_hint
from tui.app.run_state import RunState, RunStatus

if TYPE_CHECKING:
    from rich.console import Console

    from engine.lab.verdict import Verdict

F6_HINT = "F6: one epoch"
NOTE_LINES = 3  # a message that is not an error (a lesson's observation, whole in Samples) takes at most these


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def short_corpus(source: str) -> str:
    """A path shows as its file name; a description (the built-in corpus) as it is."""
    return Path(source).name if ("/" in source or "\\" in source) else source


class StatusPanel(Static):
    """Renders a run's RunStatus and settings, as tui.app.run_control gives them to show() (a few times a second)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # What show() was last given, drawn again on a resize: the run's records, not copies kept up to date here.
        self._status = RunStatus()
        self._config: TrainConfig | None = None
        self._shown: Text | None = None
        self._kept_subtitle: str | None = None  # the bottom border's text while F6's hint is there
        self._verdict_subtitle: str | None = None  # the verdict the bottom border shows (short), if it does

    def show(self, status: RunStatus, config: TrainConfig | None) -> None:
        """Show status and the settings the weights on screen were trained with (None: not known yet)."""
        self._status, self._config = status, config
        self._paint()

    def _paint(self) -> None:
        """Repaint if the text changed; lay the screen out again only if its number of lines did.

        Why: show() runs four times a second while training, and a layout pass over the whole screen cost
        more of the UI thread (and of the GIL the training thread needs) than everything else it did.
        """
        text = self.render_status()
        # Short and paused: F6's hint on the bottom border, over what the app put there (served: its note) meanwhile.
        step_hint = self._status.state is RunState.PAUSED and self.short
        if step_hint and self.border_subtitle != F6_HINT:
            self._kept_subtitle, self.border_subtitle = self.border_subtitle, F6_HINT
        elif not step_hint and self.border_subtitle == F6_HINT:
            self.border_subtitle = self._kept_subtitle
        self._show_verdict_on_border(step_hint)
        if text == self._shown:
            return
        same_height = self._shown is not None and text.plain.count("\n") == self._shown.plain.count("\n")
        self._shown = text
        self.update(text, layout=not same_height)

    def _show_verdict_on_border(self, step_hint: bool) -> None:
        """Short (80×24), the verdict against counting goes on the bottom border, where nothing else is (F6's hint
        and a served session's note keep it): the body's five lines stay the figures #22 asks for."""
        judged = self._status.verdict if self.short and not step_hint else None
        wanted = None
        if judged is not None:  # the border's room: the panel less its corners and the spaces around the title
            room = self.size.width - 4
            wanted = next((f for f in (judged.short(), judged.shortest()) if cell_len(f) <= room), judged.shortest())
        if wanted is not None and self.border_subtitle in (None, "", self._verdict_subtitle):
            self.border_subtitle = self._verdict_subtitle = wanted
        elif wanted is None and self._verdict_subtitle and self.border_subtitle == self._verdict_subtitle:
            self.border_subtitle = self._verdict_subtitle = None

    def on_mount(self) -> None:
        self._paint()  # the first frame already says what the app is doing

    def on_resize(self) -> None:
        self._paint()

    @property
    def short(self) -> bool:
        """The screen is short (80×24: tui.app.main_screen's -short layout), and the panel has five lines."""
        return any(node.has_class("-short") for node in self.ancestors)

    def render_status(self) -> Text:
        """Most important first: the panel is cut at its maximum height (tui/app.tcss), so what is cut off is the
        least needed. At 80×24 (short) its five lines read: state, epoch and progress; train and held-out; fresh;
        gradient norm and clipped share; the implementation and its chars/s. Then, where there is room: the
        speed and times, a hint, the other settings, the corpus."""
        s = self._status
        width = max(20, self.content_size.width or 46)
        short = self.short
        style = s.state.style
        head: list[Text] = [Text.assemble(("● ", style), (s.state, "bold " + style))]
        if s.state is RunState.LOADING:
            head.append(Text(s.stage))
        if s.epochs:
            head.append(Text(f"epoch {s.epoch}/{s.epochs}"))
            if s.num_batches and 0 < s.batch < s.num_batches and not s.state.ended and not short:
                head.append(Text(f"batch {s.batch}/{s.num_batches}", style="dim"))
        if s.state is RunState.PAUSED and not short:  # F6 is left out of the footer (it only works now): said here
            head.append(Text(F6_HINT, style="dim"))  # (short: on the panel's bottom border, a line saved)
        lines = wrap_chunks(head, width)
        test = Text.assemble("test ", (perplexity_text(s.test.perplexity), "bold")) if s.test else None
        if short and test is not None and lines[-1].cell_len + 2 + test.cell_len <= width:  # ended: no bar needed
            lines[-1].append("  ")
            lines[-1].append_text(test)
        elif short and lines[-1].cell_len + 2 + 10 <= width:  # short: the bar ends the first line, a line saved
            lines[-1].append("  ")
            lines[-1].append_text(progress_bar(s.fraction, width - lines[-1].cell_len))
        else:
            lines.append(progress_bar(s.fraction, width))
        hint = is_hint(s.message) and not s.message_is_error
        if s.message and not hint:  # an error, a lesson's observation, why the run paused: read before figures
            if s.message_is_error:
                lines.append(Text(s.message, style="bold red"))
            else:  # a lesson's observation (whole in Samples) takes a line or three, not the figures' place
                lines += clipped(s.message, width, 1 if short else NOTE_LINES, self.app.console)
        spe, cps, remaining = s.seconds_per_epoch, s.chars_per_second, s.remaining
        times = [
            Text(f"{spe:.2f} s/epoch" if spe is not None else "– s/epoch"),
            Text(f"elapsed {format_duration(s.elapsed)}"),
            Text(f"remaining {format_duration(remaining)}" if remaining is not None else "remaining –"),
        ]
        if s.val_perplexity is None and s.fresh_perplexity is None:  # held-out evaluation off: the book's one figure
            lines.append(Text.assemble("perplexity ", (perplexity_text(s.perplexity), "bold")))
        else:  # short: the cold start's label and the best epoch (the plot's legend names it) make way
            lines += wrap_chunks(quality_chunks(s, short), width)
            judged = s.verdict
            if judged is not None and not short:  # the model against counting (short: on the bottom border)
                lines.append(one_line(verdict_text(judged, width), width, ""))
        # What #22 asks a learner to see, before the times: is clipping at work, and how fast is this implementation.
        steps = [Text(chunk) for chunk in gradient_chunks(s, self._config.clip if self._config else 0)]
        if s.scheduled_lr is not None:  # --schedule: the rate it gives now, where 80×24 still shows it
            steps.append(Text(f"lr now {s.scheduled_lr:.3g}"))
        lines += wrap_chunks(steps, width)
        speed = [Text(f"{cps:,.0f} chars/s" if cps is not None else "– chars/s"), *times]
        if self._config is not None:
            c = self._config
            # The implementation beside its chars/s: --impl torch or scratch is the book's exercise.
            speed.insert(0, Text(f"{c.cell} {c.hidden}×{c.layers} {c.impl}"))
        lines += wrap_chunks(speed, width)
        if hint:  # one line at most, the last of the figures: "hint: " goes first when the panel is narrow
            message = s.message if cell_len(s.message) <= width else s.message.removeprefix(HINT_PREFIX)
            lines.append(one_line(message, width, "italic dim"))
        if self._config is not None:
            c = self._config
            rate = f"{c.optimizer} lr {c.lr:g}" + (f" {c.schedule}" if c.schedule != "constant" else "")
            chunks = [rate, f"clip {c.clip:g}", s.device or c.device]
            if s.precision and s.precision != "fp32":  # the book's float32 goes unsaid; bf16 or auto's choice is named
                chunks.append(s.precision)
            lines += wrap_chunks([Text(chunk) for chunk in chunks], width)
        if s.corpus:
            chunks = [short_corpus(s.corpus), f"{s.num_chars:,} chars", f"vocab {s.vocab_size:,}", f"seed {s.seed}"]
            if s.held_out_chars:
                chunks.insert(2, f"{s.held_out_chars:,} held out")
            lines += wrap_chunks([Text(chunk, style="dim") for chunk in chunks], width)
        return Text("\n").join(lines)


def progress_bar(fraction: float, width: int) -> Text:
    """█████░░░░ 42%, width cells in all."""
    bar_width = max(5, width - 5)
    filled = round(fraction * bar_width)
    return Text.assemble(("█" * filled, "green"), ("░" * (bar_width - filled), "dim"), f"{fraction:4.0%}")


def clipped(message: str, width: int, count: int, console: Console) -> list[Text]:
    """message wrapped to width, in count lines at most (italic), the last ending "…" when cut ("… (Samples)" on two
    lines or more: the whole message is there)."""
    lines = list(Text(message, style="italic").wrap(console, width))
    if len(lines) <= count:
        return lines
    kept, start = lines[: count - 1], 0
    for line in kept:  # where the last line starts in message (wrapping drops the spaces it breaks at)
        found = message.find(line.plain.strip(), start)
        start = (found if found >= 0 else start) + len(line.plain.strip())
    more = " …" if count == 1 else " … (Samples)"  # one line (80×24) keeps its room for the message
    last = Text(message[start:].lstrip(), style="italic", no_wrap=True)
    last.truncate(max(1, width - cell_len(more)))
    last.rstrip()
    last.append(more, style="dim")
    return [*kept, last]


def one_line(message: str, width: int, style: str) -> Text:
    """message on one line of width cells, cut with an ellipsis when longer."""
    text = Text(message, style=style, no_wrap=True, overflow="ellipsis")
    text.truncate(width, overflow="ellipsis")
    return text


def gradient_chunks(s: RunStatus, clip: float) -> list[str]:
    """The latest epoch's mean gradient norm before clipping and the share of steps clipped: ['‖g‖ 0.253 clipped
    100%'] (with clip 0: ['‖g‖ 0.253']); none before an epoch has measured them."""
    if s.grad_norm is None:
        return []
    clipped = f" clipped {s.clipped_share:.0%}" if clip > 0 and s.clipped_share is not None else ""
    return [f"‖g‖ {s.grad_norm:.3g}{clipped}"]


def verdict_text(judged: Verdict, width: int) -> str:
    """The verdict in width cells: the whole line, else "counting 7-gram 129.0: ×5.07 worse (held-out)", else
    without "counting"."""
    for form in (judged.line(), f"counting {judged.short()}"):
        if cell_len(form) <= width:
            return form
    return judged.short()


def perplexity_text(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def unseen_text(share: float, counted: bool) -> str:
    """How the held-out figure counts characters training never saw, and how many there are: left out (the book's
    vocabulary has no place for them), or counted as <unk> (the English edition's vocabulary)."""
    return f"{share:.1%} unseen as <unk>" if counted else f"{share:.1%} unseen left out"


def quality_chunks(s: RunStatus, short: bool = False) -> list[Text]:
    """train · held-out (· test, once the run has ended) · fresh · whole text, then the best held-out epoch and the
    unseen share, as chunks to wrap.

    short (80×24, two lines): the four figures only, fresh without its "(cold start)" once whole text stands beside
    it (F1 says what each means); the test figure is then on the first line."""
    # fresh is the cold start only (the first num_steps characters from a zero state); the whole text read from a
    # zero state (at the last sampling epoch), the memory horizon's long end, tells a cold start from the
    # carried-state trap (F1). Held-out comes second: it stays on the line with train at 80×24.
    chunks = [
        Text.assemble("train ", (perplexity_text(s.perplexity), "bold")),
        Text.assemble("held-out ", (perplexity_text(s.val_perplexity), "bold")),
        Text.assemble("fresh ", (perplexity_text(s.fresh_perplexity), "bold")),
    ]
    if s.test is not None and not short:
        chunks.insert(2, Text.assemble("test ", (perplexity_text(s.test.perplexity), "bold")))
    if not (short and s.whole_text is not None):
        chunks[-1].append(" (cold start)", "dim")
    if s.whole_text is not None:
        chunks.append(Text.assemble("whole text ", (perplexity_text(s.whole_text[1]), "bold")))
    if short:
        return chunks
    if s.best_val is not None:
        epoch, value = s.best_val
        chunks.append(Text(f"best {value:,.2f} at epoch {epoch}", style="dim"))
    if s.val_unseen_share is not None:
        chunks.append(Text(unseen_text(s.val_unseen_share, s.unseen_counted), style="dim"))
    return chunks


def wrap_chunks(chunks: list[Text], width: int, gap: str = "  ") -> list[Text]:
    """Lay chunks out on lines of at most width cells, never splitting a chunk (cell width: CJK counts 2)."""
    lines: list[Text] = []
    line = Text()
    for chunk in chunks:
        if line.cell_len and line.cell_len + len(gap) + chunk.cell_len > width:
            lines.append(line)
            line = Text()
        if line.cell_len:
            line.append(gap)
        line.append_text(chunk)
    if line.cell_len:
        lines.append(line)
    return lines
