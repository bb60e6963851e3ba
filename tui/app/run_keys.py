"""The training keys (F5 pause and resume, F6 step, F8 stop, F7 restart), the pause after idle minutes, and the
form's fields reaching the run: live ones to its trainer between batches, structural ones marked pending until F7.

One RunKeys per app (app.run_control.keys). It acts on the run that tui.app.run_control.RunControl keeps, which creates
it: what it uses of that run (KeyedRun) and of the app (KeysHost) are Protocols, so it imports neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from textual.css.query import NoMatches

from engine.config import TrainConfig, describe_layers
from engine.errors import ConfigError, RnnTuiError
from tui.app.run_state import RunState
from tui.app.widgets.settings import LiveSettingSubmitted, form_words

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel
    from textual.screen import Screen

    from engine.data.corpus import Vocab
    from engine.trainer import Trainer
    from tui.app.main_screen import MainScreen
    from tui.app.run_state import RunStatus
    from tui.app.shapes_preview import ShapesPreview
    from tui.app.worker import EngineLoader
    from tui.served import ServedMode

IDLE_MESSAGE = "paused: no input for {idle}; F5 resumes"


class UnsavedWeights(Protocol):
    """What the keys ask of the app's checkpoints (tui.app.checkpoint_flow.CheckpointFlow)."""

    def unsaved(self) -> tuple[Any, str] | None: ...


class KeysHost(Protocol):
    """What the keys use of the app (tui.app.RnnTuiApp): whether it is served (a corpus path is checked against the
    session's files), its checkpoints' unsaved weights, a confirmation dialog and notifications."""

    @property
    def served(self) -> ServedMode | None: ...
    @property
    def checkpoints(self) -> UnsavedWeights: ...
    def push_screen(self, screen: Screen[Any], callback: Callable[[Any], None]) -> object: ...
    def notify(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information", timeout: float | None = None
    ) -> None: ...


class KeyedRun(Protocol):
    """What the keys use of the run on screen (tui.app.run_control.RunControl)."""

    base_config: TrainConfig
    status: RunStatus
    stepping: bool  # F6 asked for one step: the next pause ends it
    vocab: Vocab | None
    loader: EngineLoader
    shapes: ShapesPreview

    @property
    def trainer(self) -> Trainer | None: ...
    @property
    def config(self) -> TrainConfig | None: ...
    @property
    def panels(self) -> MainScreen: ...
    def show_status(self) -> None: ...
    def cancel(self) -> None: ...
    def form_config(self, quiet: bool = False) -> TrainConfig | None: ...
    def start(self, overrides: dict[str, Any] | TrainConfig) -> None: ...


class RunKeys:
    def __init__(self, app: KeysHost, run: KeyedRun) -> None:
        self.app = app
        self.run = run

    def pause_if_idle(self, idle_seconds: float) -> None:
        trainer, status = self.run.trainer, self.run.status
        if trainer is None or trainer.paused or status.state not in (RunState.RUNNING, RunState.STEPPING):
            return
        trainer.pause()
        status.state = RunState.PAUSING
        idle_text = f"{idle_seconds / 60:.0f} min" if idle_seconds >= 120 else f"{idle_seconds:.0f} s"
        status.message, status.message_is_error = IDLE_MESSAGE.format(idle=idle_text), False
        self.run.show_status()

    # ----- the form's settings -----

    def live_setting(self, message: LiveSettingSubmitted) -> None:
        """A live field's value, to the trainer (which ignores a value it has already); only checked when nothing
        trains: it applies at the next restart."""
        name, value = message.name, message.value
        settings = self.run.panels.settings
        trainer = self.run.trainer
        try:
            if trainer is not None and not self.run.status.state.ended:
                trainer.update(**{name: value})
            else:
                (self.run.config or self.run.base_config).with_changes(**{name: value})
        except ConfigError as exc:
            settings.set_error(name, form_words(exc))
            return
        settings.clear_error(name)

    def structural_changed(self) -> None:
        try:
            self.run.panels.settings.mark_pending(self.run.config)
        except NoMatches:  # a late message while the app closes
            return
        self.run.shapes.wanted = True

    # ----- the training keys -----

    def _trainer_or_say_why(self) -> Trainer | None:
        """The running trainer, or None after saying why there is none."""
        trainer, state = self.run.trainer, self.run.status.state
        if trainer is None:
            self.app.notify("the model is still loading", severity="warning")
            return None
        if state.ended:
            self.app.notify(f"training has {state}: F7 restarts with the form's settings", severity="warning")
            return None
        return trainer

    def toggle_pause(self) -> None:
        trainer = self._trainer_or_say_why()
        if trainer is None:
            return
        status = self.run.status
        if trainer.paused:
            trainer.resume()
            status.state = RunState.RUNNING
            if status.message.startswith("paused: no input"):
                status.message = ""
        else:
            trainer.pause()
            status.state = RunState.PAUSING  # until the trainer reaches a batch boundary
        self.run.stepping = False
        self.run.show_status()

    def step(self) -> None:
        trainer = self._trainer_or_say_why()
        if trainer is None:
            return
        if not trainer.paused:
            self.app.notify("step works while paused: F5 pauses", severity="warning")
            return
        self.run.stepping = True
        trainer.step()
        self.run.status.state = RunState.STEPPING
        self.run.show_status()

    def stop(self) -> None:
        if self._trainer_or_say_why() is None:
            return
        self.run.cancel()
        self.run.status.state = RunState.STOPPING
        self.run.show_status()

    def restart(self) -> None:
        """F7: a new run with the form's settings, after asking when something would be lost."""
        config = self.run.form_config()
        if config is None or not self._preflight(config):
            return
        changed = config.structural_differences(self.run.config or self.run.base_config)
        status = self.run.status
        training = not status.state.ended and status.epoch > 0
        never_started = self.run.config is None and status.state is RunState.FAILED  # a bad corpus: nothing to lose
        unsaved = self.unsaved_position()
        if never_started or (not changed and not training and unsaved is None):  # e.g. after a failure, lower lr
            self._restart(config)
            return
        if changed:
            names = ", ".join(name.replace("_", "-") for name in changed)
            question = f"Restart with new {names}? The model starts from scratch; this run's training is discarded."
        elif training:
            question = f"Restart from scratch? The {status.epoch} epochs trained so far are discarded."
        else:
            question = f"Restart from scratch? This run's weights ({unsaved}) are discarded."
        if unsaved is not None:
            question += " They are not saved: Esc, then ctrl+s, keeps them."

        def answered(yes: bool | None) -> None:
            if yes:
                self._restart(config)

        from tui.app.screens import ConfirmScreen

        self.app.push_screen(ConfirmScreen(question), answered)

    def unsaved_position(self) -> str | None:
        """A finished or stopped run's position ('epoch 12') if its weights are saved nowhere; else None."""
        if self.run.status.state not in (RunState.FINISHED, RunState.STOPPED):
            return None
        unsaved = self.app.checkpoints.unsaved()
        return unsaved[1] if unsaved is not None else None

    def _preflight(self, config: TrainConfig) -> bool:
        """A corpus path that does not exist, or a device this machine lacks, is named in the form before anything
        is stopped: the run training goes on."""
        from engine.data.corpus import find_corpus

        try:
            name = "corpus"
            if self.app.served is not None:
                self.app.served.check_corpus(config.corpus)
            find_corpus(config.corpus)  # no torch needed
            if self.run.loader.loaded:  # torch is in: asking for the device costs nothing (else the run will say)
                from engine.trainer import resolve_device

                name = "device"
                resolve_device(config.device)
            if self.run.vocab is not None:  # the machine can hold it (the corpus's vocabulary as now)
                from engine.limits import check_memory

                name = "hidden"
                check_memory(config, len(self.run.vocab), config.max_chars)
        except RnnTuiError as exc:
            self.run.panels.settings.set_error(name, form_words(exc), sticky=True)
            self.app.notify(form_words(exc), title="settings", severity="error")
            return False
        return True

    def _restart(self, config: TrainConfig) -> None:
        self.run.panels.samples.add_note(
            f"restart: {config.cell}, {config.hidden} hidden, {describe_layers(config.layers)}"
        )
        self.run.start(config)  # whole: no preset applied again, no dict in between
