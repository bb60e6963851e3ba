"""Modal screens: help (F1), restart confirmation, checkpoint save and load."""

from __future__ import annotations

from typing import ClassVar, TypeVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from engine.config import LIVE_SETTINGS
from engine.lab.copies import DEFINITION as COPIES_DEFINITION
from tui.app.widgets.ordered_input import OrderedInput
from tui.app.widgets.settings import FIELDS
from tui.served import OutsideSession, user_path

ResultType = TypeVar("ResultType")


PERPLEXITY_HELP = Text.assemble(
    ("\n\nWhat each figure in the panels means\n", "bold"),
    ("train", "bold"),
    " (the book's number): measured on the text the model trains on, with the hidden state carried from batch to "
    "batch as training carries it. It falls toward 1 as the model memorises that text.\n",
    ("fresh", "bold"),
    " (fresh-state, the cold start): the same training text, each character predicted within the first 35 (steps) "
    "characters read from a zero state, as every generation starts. It is high for any model at first; alone it "
    "cannot tell a cold start from a trap.\n",
    ("whole text", "bold"),
    " (at each sampling epoch): the whole training text read in one pass from a zero state, the memory horizon's "
    "long end (Lab, F11). Close to train: the model does from a zero state what training says. Far above train: "
    "it leans on a state it never has when it generates, the carried-state trap (with state carry; try state "
    "epoch).\n",
    ("held-out", "bold"),
    ": the text that follows the training text, never trained on, from a zero state: how well the model predicts "
    "new text (characters training never saw are left out, their share shown beside it). When it climbs while "
    "train falls, the model is memorising; │ in the plot marks its best epoch.\n",
    ("‖g‖", "bold"),
    " (Status; ctrl+g plots it per step, θ as a line): the gradients' global L2 norm before clipping, the latest "
    "epoch's mean, and the share of its steps that clipping scaled down to θ (clip). With the book's θ 0.01 that is "
    "nearly every step: each step then has the same length, however large the gradient.\n",
    ("impl", "bold"),
    " (beside the model in Status): fused (hand-written kernels), torch (nn.RNN fed one-hot, autograd: the book's "
    "§6.5) or scratch (a Python loop over time steps: §6.4). The same perplexities; compare their chars/s. "
    "Training only: generation, evaluation and the Lab read the weights the same way whichever impl trained them.\n",
    ("copied", "bold"),
    f" (Samples panel, the Lab's Timeline, `rnn-tui lab copies`, copy_longest and copy_share in --metrics): "
    f"{COPIES_DEFINITION}.\n",
    ("saliency", "bold"),
    " (F4, Why?; `rnn-tui lab saliency`): for one prediction, how much each earlier character moves it, the size of "
    "the gradient of its log-probability with respect to that character's one-hot input, shaded behind the text (the "
    "darker, the more). F4 reads the text it explains; `lab saliency` the held-out text unless given --text, and "
    "says which.\n",
    ("effective context", "bold"),
    " (F4, `lab saliency`): how many characters back, counted from the prediction, hold 90 % of the summed saliency: "
    "a few for a short memory, a word or a line for a long one.\n",
    ("gate saturation", "bold"),
    " (F9 on a gate; `rnn-tui lab gates`; gate_saturation in --metrics): the share of a GRU's or LSTM's gate values "
    "below 0.1 (closed, left out) or above 0.9 (open, let through). F9 shows one unit over the text it colours (the "
    "training text's first 600 characters, or the sample); `lab gates` and --metrics each layer over the same "
    "held-out stretches (one in 4, each from a zero state), so their shares agree.\n\n",
    ("Presets\n", "bold"),
    ("d2l-zh", "bold"),
    ": the Chinese edition's §6.5 run: Jay Chou lyrics, 256 hidden units, Adam lr 0.001, state carried, 250 epochs.\n",
    ("d2l-en", "bold"),
    ": the English edition's run: The Time Machine (letters only, shipped), 32 hidden units, SGD lr 1 clipped at 1, "
    "shuffled overlapping windows, a zero state every batch, 100 epochs.\n",
    ("whole-en", "bold"),
    ", ",
    ("whole-zh", "bold"),
    ": the whole Time Machine or the whole lyrics, the last tenth held out and the tenth before it the test text, "
    "with the regularisers that help a small model generalise (io dropout, a tied embedding, a cosine schedule, "
    "stopped on held-out); docs/regularisation.md. Choosing one fills the form; F7 applies it.",
)


def lab_help() -> Text:
    """The lab's views (F11), one paragraph each, from the panes themselves."""
    from tui.app.screens.lab import lab_panes

    shown = Text()
    panes = lab_panes()
    if panes:
        shown.append("\n\nThe lab (F11): why training behaves\n", style="bold")
        for pane in panes:
            shown.append(pane.TITLE, style="bold")
            shown.append(f": {pane.HELP}\n")
    return shown


def key_label(key: str) -> str:
    """'f7,ctrl+r' → 'F7 / ctrl+r'."""
    return " / ".join(k.upper() if k.startswith("f") else k for k in key.split(","))


class HelpScreen(ModalScreen[None]):
    """Every key of the app (read from its bindings, so the list is never out of date) and what applies live."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "dismiss", "Close help")]

    def __init__(self, keys: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.keys = keys  # (key, what it does, longer help)

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, description, tooltip in self.keys:
            table.add_row(key_label(key), f"{description}" + (f" — {tooltip}" if tooltip else ""))
        table.add_row("ctrl+p", "command palette: every action above, by name")
        table.add_row("tab", "move between fields; Enter in a field applies it")
        live = ", ".join(f.label for f in FIELDS if f.name in LIVE_SETTINGS)
        restart = ", ".join(f.label for f in FIELDS if f.name not in LIVE_SETTINGS)
        settings = Text()
        settings.append("Live ", style="bold green")
        settings.append(f"(Enter or leaving the field applies them to the running trainer): {live}.\n")
        settings.append("On restart ", style="bold yellow")
        settings.append(f"(marked *, F7 asks before discarding the run): {restart}.\n")
        settings.append("Generate uses a copy of the current weights: training goes on undisturbed.", style="dim")
        settings.append_text(PERPLEXITY_HELP)
        settings.append_text(lab_help())
        with Vertical(id="help-box"):
            title = "rnn-tui keys, settings, and what each perplexity means (scroll)"
            yield Static(Text(title, style="bold"), id="help-title")
            with VerticalScroll():
                yield Static(table, id="help-keys")
                yield Static(settings, id="help-settings")
            yield Static(Text("Esc or F1 closes", style="dim"), id="help-footer")


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(False)", "Cancel"),
        Binding("enter", "answer(True)", "Confirm"),
    ]

    def __init__(self, question: str, confirm: str = "Restart") -> None:
        super().__init__()
        self.question = question
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question), classes="dialog-text")  # may hold a typed path: no markup
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.confirm} (Enter)", id="yes", variant="warning", compact=True)
                yield Button("Cancel (Esc)", id="no", compact=True)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class PathDialog(ModalScreen[ResultType]):
    """A dialog around a path field that starts at `default`; Esc answers None.

    Every file dialog passes what was typed through checked_path: when the app is served (tui.served), a path
    outside the session's directory is refused inline (a Static with class path-error) and nothing is opened.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str) -> None:
        super().__init__()
        self.default = default

    def checked_path(self, text: str) -> str | None:
        """The path to use, or None after saying inline why it is refused."""
        try:
            return user_path(text)
        except OutsideSession as exc:
            self.query_one(".path-error", Static).update(Text(str(exc), style="red"))
            return None

    def action_cancel(self) -> None:
        self.dismiss(None)


class SaveScreen(PathDialog[str | None]):
    """Asks where to save a checkpoint; returns the path or None."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Save a checkpoint to (Enter saves, Esc cancels):")
            yield OrderedInput(self.default, id="path", compact=True)
            yield Static("", classes="path-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        typed = event.value.strip()
        if typed and (path := self.checked_path(typed)):
            self.dismiss(path)


class LoadScreen(PathDialog[tuple[str, str] | None]):
    """Asks for a checkpoint and what to do with it: ("continue" | "generate", path), or None."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Load a checkpoint:")
            yield OrderedInput(self.default, id="path", compact=True)
            yield Static("", id="load-error", classes="path-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Continue training (Enter)", id="continue", variant="primary", compact=True)
                yield Button("Just generate", id="just-generate", compact=True)
                yield Button("Cancel (Esc)", id="cancel", compact=True)

    def _answer(self, mode: str) -> None:
        typed = self.query_one("#path", Input).value.strip()
        if not typed:
            self.query_one("#load-error", Static).update(Text("type the checkpoint's path", style="red"))
            return
        if path := self.checked_path(typed):
            self.dismiss((mode, path))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._answer("continue")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.action_cancel()
        else:
            self._answer("generate" if event.button.id == "just-generate" else "continue")
