"""The Lab's Lessons tab: chapter 6's exercises as guided runs (engine/lessons.py). A lesson highlighted shows its
question, what to watch and its settings; Enter fills the form with them and restarts (F7's restart: it asks before
discarding a run). When the run ends on its own, its observation shows in the Samples panel and the status line."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.lessons import LESSONS, LESSONS_BY_NAME, Lesson
from tui.app.screens.lab_pane import LabPane

# Settings a lesson leaves as the app was opened with: where the text is and what the machine computes with.
KEPT_SETTINGS = ("corpus", "device", "precision")


class LessonsPane(LabPane):
    NAME = "lessons"
    TITLE = "Lessons"
    HELP = (
        "chapter 6's exercises as guided runs (no clipping, an untrained model writing, the carried-state "
        "trap, memorisation, RNN/GRU/LSTM at equal parameters, temperature, one-hot against the vocabulary). ↑/↓ "
        "picks one, Enter fills the form with its settings and restarts; when the run ends on its own, an "
        "observation from your own run shows in Samples. Also `rnn-tui --lesson NAME`, `rnn-tui train --headless "
        "--lesson NAME`, and for a class `rnn-tui serve --lesson NAME` (every seat's observation in one CSV)."
    )
    DEFAULT_CSS = """
    LessonsPane { height: 1fr; }
    #lessons-list { width: 26; height: 1fr; }
    #lessons-detail { width: 1fr; height: 1fr; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield OptionList(*(Option(lesson.title, id=lesson.name) for lesson in LESSONS), id="lessons-list")
            with VerticalScroll(id="lessons-detail"):
                yield Static("", id="lessons-text")

    def shown(self) -> None:
        options = self.query_one("#lessons-list", OptionList)
        current = self.rnn_app.run_control.lesson
        names = [lesson.name for lesson in LESSONS]
        options.highlighted = names.index(current) if current in names else options.highlighted or 0
        options.focus()
        self._describe(LESSONS[options.highlighted or 0])

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id in LESSONS_BY_NAME:
            self._describe(LESSONS_BY_NAME[event.option.id])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id in LESSONS_BY_NAME:
            self._start(LESSONS_BY_NAME[event.option.id])

    def _describe(self, lesson: Lesson) -> None:
        text = Text()
        text.append(lesson.title + "\n", style="bold")
        text.append(lesson.exercise + "\n\n", style="dim")
        text.append("Question: ", style="bold")
        text.append(lesson.question + "\n\n")
        text.append("Watch: ", style="bold")
        text.append(lesson.watch + "\n\n")
        text.append("Settings: ", style="bold")
        text.append(" ".join(lesson.argv()) + "\n\n")
        following = self.rnn_app.run_control.lesson == lesson.name
        text.append("You are following this lesson. " if following else "", style="italic")
        text.append("Enter starts it.", style="italic")
        self.query_one("#lessons-text", Static).update(text)

    def _start(self, lesson: Lesson) -> None:
        app = self.rnn_app
        control = app.run_control
        kept = {name: value for name, value in app.options.overrides.items() if name in KEPT_SETTINGS}
        control.lesson = lesson.name
        control.panels.settings.load(lesson.config(kept))
        control.panels.samples.add_note(f"lesson {lesson.name}: {lesson.question} Watch {lesson.watch}")
        self.screen.dismiss()
        app.call_later(control.keys.restart)
