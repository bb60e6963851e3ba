"""What the screens use of the app and of the run on screen, spelled out as Protocols.

The screens are opened by the app (tui.app) and read the run that tui.app.run_control.RunControl keeps; neither is
imported by them, not even for annotations, so no import circle runs through the app. The app passes itself where a
ScreenHost is asked for, and mypy checks that it (and its run control) has everything listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tui.app.screens.model_source import WeightsOnScreen

if TYPE_CHECKING:  # annotations only
    from textual.message import Message
    from textual.screen import Screen
    from textual.worker import Worker, WorkType

    from engine.config import TrainConfig
    from engine.lab.gradients import GradientsThroughTime
    from engine.run_book import RunBook
    from tui.app.main_screen import MainScreen
    from tui.app.run_state import RunStatus
    from tui.app.worker import RunHandle
    from tui.cli import AppOptions

ResultType = TypeVar("ResultType")  # what a worker's work returns


class WorkerHost(Protocol):
    """Textual's workers and the two ways back to the app's thread (a call, a message): what every flow and screen
    that runs work off the UI thread uses of the app. The flows' own hosts (tui.app.run_control.RunHost) extend it."""

    def run_worker(
        self,
        work: WorkType[ResultType],
        name: str | None = "",
        group: str = "default",
        description: str = "",
        exit_on_error: bool = True,
        start: bool = True,
        exclusive: bool = False,
        thread: bool = False,
    ) -> Worker[ResultType]: ...
    def call_from_thread(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...
    def post_message(self, message: Message) -> bool: ...


class Restarts(Protocol):
    """F7's restart (tui.app.run_keys.RunKeys): a new run with the form's settings, asking first when needed."""

    def restart(self) -> None: ...


class RunsOnScreen(WeightsOnScreen, Protocol):
    """What the screens read of the run on screen (tui.app.run_control.RunControl): its trainer or a checkpoint loaded
    to generate (WeightsOnScreen), its progress, the runs kept for F10 and their gradient curves, the lesson
    followed; a restart."""

    lesson: str | None

    @property
    def app(self) -> WorkerHost: ...
    @property
    def config(self) -> TrainConfig | None: ...
    @property
    def base_config(self) -> TrainConfig: ...
    @property
    def current(self) -> RunHandle | None: ...
    @property
    def status(self) -> RunStatus: ...
    @property
    def run_book(self) -> RunBook: ...
    @property
    def lab_curves(self) -> dict[str, GradientsThroughTime | None]: ...
    @property
    def panels(self) -> MainScreen: ...
    @property
    def keys(self) -> Restarts: ...


class ScreenHost(Protocol):
    """What the screens use of the app (tui.app.RnnTuiApp) beyond Textual's own: the run on screen, the main
    screen's panels, the command line's options; opening a screen, calling back after this one."""

    @property
    def run_control(self) -> RunsOnScreen: ...
    @property
    def main(self) -> MainScreen: ...
    @property
    def options(self) -> AppOptions: ...
    def push_screen(self, screen: Screen[Any]) -> object: ...
    def call_later(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> bool: ...
