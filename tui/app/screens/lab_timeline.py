"""The Lab's Timeline tab: every report's samples of the run on screen, scrubbed epoch by epoch (←/→), with the live
settings they were drawn under and their stretches copied verbatim from the training text highlighted.

The records come from the trainer (Trainer.timeline, a copy; a resumed checkpoint's come with it), or from a
checkpoint loaded only to generate (ctrl+o → Generate: its saved timeline); the copies are measured in a thread
worker (engine.lab.timeline), and the widgets are touched only from the app thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from engine.errors import first_line
from tui.app.screens.lab_pane import LabPane

if TYPE_CHECKING:  # torch-backed: loaded by the worker, not when F1 lists the lab's help
    from engine.lab.timeline import TimelineEntry

SCRUB_WIDTH = 60  # at most this many epoch marks on the scrub line; more are thinned (its ends always shown)


class TimelinePane(LabPane, can_focus=True):
    NAME = "timeline"
    TITLE = "Timeline"
    HELP = (
        "every sample the run drew, at each report (every period epochs), with the settings of that "
        "moment (lr, clip, temperature…). ←/→ scrub the epochs, Home/End jump to the first/last. Highlighted: "
        "the copies, as in the Samples panel (see copied, above): watch a sample improve, then turn into a copy of the "
        "lyrics. Checkpoints keep the timeline: one loaded with ctrl+o (to continue, or just to generate: its name "
        "then heads the tab) shows its own; `rnn-tui lab timeline --checkpoint CKPT` "
        "prints it and draws the checkpoint's own epoch's samples again, byte for byte."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Earlier", show=False),
        Binding("right", "move(1)", "Later", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]
    DEFAULT_CSS = """
    TimelinePane { height: 1fr; }
    TimelinePane:focus #timeline-scrub { background: $boost; }
    #timeline-scrub { height: 2; }
    #timeline-body { height: 1fr; }
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.entries: tuple[TimelineEntry, ...] = ()
        self.index = 0
        self._source_id = 0  # id of the trainer (or loaded checkpoint) whose records entries hold: new ones measured
        self.source_label = ""  # a checkpoint loaded to generate: its label ("book.ckpt, epoch 250"); a run: ""
        self.copies_measured = True  # False: the checkpoint's training text is not here, copies not looked for

    def compose(self) -> ComposeResult:
        yield Static("reading the run's samples…", id="timeline-scrub")
        with VerticalScroll(id="timeline-body"):
            yield Static("", id="timeline-text")

    def on_mount(self) -> None:
        self.set_interval(1.0, self._poll)

    def shown(self) -> None:
        self.focus()
        self._load()

    def _poll(self) -> None:
        """While the tab is on screen, a new report (or another run, or a checkpoint loaded to generate) is read in:
        the timeline follows the weights on screen."""
        runs = self.rnn_app.run_control
        if not self.is_on_screen:
            return
        if runs.checkpoint is not None:  # ctrl+o → Generate: the checkpoint's own timeline, which does not grow
            if id(runs.checkpoint) != self._source_id:
                self._load()
            return
        trainer = runs.trainer
        if trainer is None:
            return
        if id(trainer) != self._source_id or len(trainer.state.timeline) != len(self.entries):
            self._load()

    @work(thread=True, exclusive=True, group="lab-timeline", exit_on_error=False)
    def _load(self) -> None:
        from textual.worker import get_current_worker

        from engine.lab.timeline import timeline_entries

        runs = self.rnn_app.run_control
        weights, trainer = runs.checkpoint, runs.trainer
        try:
            if weights is not None:  # a checkpoint loaded only to generate: its run's timeline, as saved
                text = weights.corpus.text if weights.corpus is not None else None
                if text is None and trainer is not None and trainer.vocab == weights.vocab:
                    text = trainer.corpus.text  # as the insight screens do (tui.app.screens.model_source)
                entries = timeline_entries(weights.timeline, text or "")
                whose, copies, label = id(weights), text is not None, weights.label
            elif trainer is None:
                self.app.call_from_thread(self._say, "No run yet: the timeline fills as the run reports its samples.")
                return
            else:
                records = trainer.timeline()
                known = self.entries if id(trainer) == self._source_id else ()
                if [e.epoch for e in known] != [r.epoch for r in records[: len(known)]]:
                    known = ()  # a resumed or replaced run: measured afresh
                entries = known + timeline_entries(records[len(known) :], trainer.corpus.text)
                whose, copies, label = id(trainer), True, ""
        except Exception as exc:  # never a traceback: one line in the pane
            self.app.call_from_thread(self._say, f"could not read the timeline: {first_line(exc)}")
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, entries, whose, copies, label)

    def _say(self, message: str) -> None:
        self.query_one("#timeline-scrub", Static).update(message)
        self.query_one("#timeline-text", Static).update("")

    def _show(self, entries: tuple[TimelineEntry, ...], source_id: int, copies: bool = True, label: str = "") -> None:
        at_end = not self.entries or self.index == len(self.entries) - 1 or source_id != self._source_id
        self.entries, self._source_id, self.copies_measured, self.source_label = entries, source_id, copies, label
        if not entries and self.source_label:
            self._say(
                f"No samples on {self.source_label}'s timeline: saved before its first report, or before "
                "timelines were kept."
            )
            return
        if not entries:
            period = self.rnn_app.run_control.config
            every = f"every {period.pred_period} epochs" if period is not None else "at each report"
            self._say(f"No samples yet: the run draws them {every}, and at its last epoch.")
            return
        if at_end or self.index >= len(entries):  # follow the newest report unless scrubbed back
            self.index = len(entries) - 1
        self._draw()

    def action_move(self, step: int) -> None:
        if self.entries:
            self.index = max(0, min(len(self.entries) - 1, self.index + step))
            self._draw()

    def action_jump(self, where: int) -> None:
        if self.entries:
            self.index = where % len(self.entries)
            self._draw()

    def _draw(self) -> None:
        entry = self.entries[self.index]
        self.query_one("#timeline-scrub", Static).update(self._scrub_line(entry))
        body = Text()
        body.append(entry.settings_line() + "\n", style="dim")
        if not entry.samples:
            body.append("\nno samples at this report (pred len 0, or prefixes the corpus cannot spell)", style="italic")
        for sample in entry.samples:
            c = sample.copy  # the Samples panel's marking: copies of ≥ 8, their generated characters
            at = len(sample.prefix)
            body.append("\n" + sample.prefix, style="bold")
            if not self.copies_measured:  # the text it trained on is not here: nothing to mark
                body.append(c.text[at:])
                body.append("\n  (copies not measured: the text it trained on is not on this machine)\n", style="dim")
                continue
            for start, end in c.spans:
                body.append(c.text[at:start])
                body.append(c.text[start:end], style="reverse")
                at = end
            body.append(c.text[at:])
            body.append(
                f"\n  copied {c.copied} of {c.generated} generated characters, longest copy {c.longest_copy}\n",
                style="dim",
            )
        self.query_one("#timeline-text", Static).update(body)

    def _scrub_line(self, entry: TimelineEntry) -> Text:
        count = len(self.entries)
        line = Text()
        if self.source_label:  # a loaded checkpoint's timeline, not a run's: its file's name (the epoch follows)
            line.append(f"{self.source_label.split(',')[0]}  ", style="magenta")
        line.append(f"epoch {entry.epoch}", style="bold")
        line.append(f"  report {self.index + 1} of {count}  ·  ←/→ scrub, Home/End first/last\n", style="dim")
        width = min(count, SCRUB_WIDTH)
        shown = {round(i * (count - 1) / (width - 1)) for i in range(width)} if width > 1 else {0}
        for i in sorted(shown | {self.index}):
            line.append("●" if i == self.index else "·", style="bold" if i == self.index else "dim")
        return line
