"""ctrl+q in a served session: the session's files go with the tab, so leaving asks first and offers the weights
as a download to the student's own computer (the browser's download, through Textual's file delivery)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.served import duration

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel
    from textual.screen import Screen
    from textual.timer import Timer


class SessionWeights(Protocol):
    """What leaving uses of the app's checkpoints (tui.app.checkpoint_flow.CheckpointFlow)."""

    def unsaved(self) -> tuple[Any, str] | None: ...
    def download(self) -> None: ...


class LeavingHost(Protocol):
    """What leaving a served session uses of the app (tui.app.RnnTuiApp): its checkpoints, whether leaving is
    decided, stopping the training, and Textual's own screens, timers and exit."""

    leave_confirmed: bool
    releasing: bool

    @property
    def checkpoints(self) -> SessionWeights: ...
    @property
    def is_web(self) -> bool: ...
    async def _stop_training(self) -> None: ...
    def action_quit(self) -> Awaitable[None] | None: ...
    def call_later(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> bool: ...
    def push_screen(self, screen: Screen[Any], callback: Callable[[Any], None]) -> object: ...
    def set_timer(self, delay: float, callback: Callable[[], Awaitable[None]]) -> Timer: ...
    def exit(self, result: Any = None, return_code: int = 0) -> None: ...
    def notify(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information", timeout: float | None = None
    ) -> None: ...


class LeaveScreen(ModalScreen[str | None]):
    """Answers "leave", "download" or None (stay)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(None)", "Stay"),
        Binding("enter", "answer('leave')", "Leave"),
        Binding("d", "answer('download')", "Download"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question), classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Leave (Enter)", id="leave", variant="warning", compact=True)
                yield Button("Download the weights (d)", id="download", variant="primary", compact=True)
                yield Button("Stay (Esc)", id="stay", compact=True)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "stay" else event.button.id)


def ask_before_leaving(app: LeavingHost) -> None:
    """The question ctrl+q asks in a served session; Enter (or ctrl+q again) leaves."""
    unsaved = app.checkpoints.unsaved()
    if unsaved is not None:
        what = f"This session's weights ({unsaved[1]}) are saved nowhere, and its files go when you leave."
    else:
        what = "This session's files (checkpoints, CSV exports) go when you leave."
    question = f"Leave rnn-tui? {what} Download the weights to your computer first?"

    def answered(answer: str | None) -> None:
        if answer == "leave":
            app.leave_confirmed = True
            app.call_later(app.action_quit)
        elif answer == "download":
            app.checkpoints.download()

    app.push_screen(LeaveScreen(question), answered)


DOWNLOAD_WAIT_SECONDS = 300.0  # leaving, the app waits this long at most for its downloads to reach the browser
RELEASE_GRACE_SECONDS = 20.0  # the download's time to reach the browser before the session leaves


def release_idle_seat(app: LeavingHost, idle: float) -> None:
    """Served, nobody at the tab for the release limit: save the weights in the session, offer them to the browser
    as a download, and leave (exit RELEASED_EXIT) so that the seat goes to someone who is there. Once."""
    from tui.served import RELEASED_EXIT

    if app.releasing:
        return
    app.releasing = True
    app.notify(
        f"nobody has typed here for {duration(idle)}: this seat goes back to the class; "
        "the weights download to this computer first",
        severity="warning",
        timeout=RELEASE_GRACE_SECONDS,
    )
    if app.checkpoints.unsaved() is not None:
        app.checkpoints.download()

    async def leave() -> None:
        from tui.web_driver import deliveries_done

        await app._stop_training()
        await deliveries_done(app, DOWNLOAD_WAIT_SECONDS)  # the download whole before the seat goes
        app.exit(RELEASED_EXIT)

    app.set_timer(RELEASE_GRACE_SECONDS if app.is_web else 0.5, leave)
