"""Checkpoints in the app: ctrl+s saves, ctrl+o loads to continue training or only to generate.

How far a continued checkpoint trains is a pure function (plan_continue), decided from the checkpoint and the
settings form, so it is tested without torch, a checkpoint file or an app. CheckpointFlow runs the dialogs and the
thread workers, and hands a continued run or loaded weights to run control. What it uses of the app and of run
control is spelled out (CheckpointHost, CheckpointRuns): the app passes itself, and nothing else of it is reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import ConfigError, RnnTuiError, first_line
from engine.limits import checkpoint_bytes
from tui.app.messages import CheckpointFailed, CheckpointLoaded, CheckpointSaved, ContinueChecked
from tui.app.worker import NOT_CANCELLED
from tui.served import shown

if TYPE_CHECKING:  # torch-backed, or importing the app: annotations only
    from textual.message import Message
    from textual.notifications import SeverityLevel
    from textual.screen import Screen

    from engine.checkpoint import Checkpoint
    from engine.config import TrainConfig
    from engine.data.corpus import Corpus
    from engine.run_book import RunBook
    from engine.trainer import Trainer
    from tui.app.checkpoint_weights import CheckpointWeights
    from tui.app.main_screen import MainScreen
    from tui.app.worker import EngineLoader
    from tui.served import ServedMode

DEFAULT_CHECKPOINT = "rnn-tui.ckpt"  # the dialogs' first path; the rescue file is named after it


@dataclass(frozen=True)
class ContinuePlan:
    overrides: dict[str, Any]  # the session's overrides: epochs added when the form's are the target
    note: str  # told to the user once the resumed session is open


def plan_continue(
    name: str, position: str, trained: int, own_epochs: int, form_epochs: int | None, overrides: dict[str, Any]
) -> ContinuePlan:
    """The form's epochs say how far to train; a checkpoint cannot train backwards, so a smaller one is set aside
    for the checkpoint's own epochs, and a checkpoint with nothing left to train says how to go further.

    name: the checkpoint's file name; position: where it stands ("epoch 12", or "batch 3 of 8 of epoch 13");
    trained: its finished epochs; own_epochs: the epochs its settings asked for; form_epochs: the form's (None when
    invalid).
    """
    if form_epochs is not None and form_epochs > trained:
        return ContinuePlan(
            {**overrides, "epochs": form_epochs},
            f"continuing {name} from {position} to {form_epochs} (epochs from the settings form)",
        )
    if own_epochs > trained:
        return ContinuePlan(
            overrides,
            f"continuing {name} from {position} to its own {own_epochs}: "
            f"the form's epochs ({form_epochs}) is not above {trained}",
        )
    return ContinuePlan(
        overrides,
        f"{name} has trained all its {trained} epochs: set epochs above {trained} in the settings form, "
        "then ctrl+o → Continue again to train further",
    )


class CheckpointRuns(Protocol):
    """What CheckpointFlow uses of the run on screen (tui.app.run_control.RunControl)."""

    @property
    def trainer(self) -> Trainer | None: ...
    @property
    def base_config(self) -> TrainConfig: ...
    @property
    def loader(self) -> EngineLoader: ...
    @property
    def run_book(self) -> RunBook: ...
    @property
    def panels(self) -> MainScreen: ...
    def show_checkpoint(self, weights: CheckpointWeights, note: str) -> None: ...
    def start(self, overrides: dict[str, Any], resume: str | None = None, *, notes: tuple[str, ...] = ()) -> None: ...


class CheckpointHost(Protocol):
    """What CheckpointFlow uses of the app (tui.app.RnnTuiApp): Textual's dialogs, workers, messages and downloads,
    the run on screen, the served session's limits."""

    @property
    def run_control(self) -> CheckpointRuns: ...
    @property
    def served(self) -> ServedMode | None: ...
    @property
    def is_web(self) -> bool: ...
    def notify(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information", timeout: float | None = None
    ) -> None: ...
    def push_screen(self, screen: Screen[Any], callback: Callable[[Any], None]) -> object: ...
    def run_worker(self, work: Callable[[], None], *, group: str, thread: bool, exit_on_error: bool) -> object: ...
    def post_message(self, message: Message) -> bool: ...
    def deliver_binary(self, path_or_file: str, *, mime_type: str) -> object: ...
    def action_focus_prefix(self) -> None: ...


class CheckpointFlow:
    """ctrl+s and ctrl+o: the dialogs, the checks before anything is stopped, and the thread workers that save and
    load (torch's serialisation never runs on the UI thread). One per app (app.checkpoints)."""

    def __init__(self, app: CheckpointHost, first_path: str) -> None:
        self.app = app
        self.last_path = first_path  # the dialogs offer the path used last
        self._saved: tuple[Trainer, str] | None = None  # (trainer, position) of the latest successful save

    @property
    def run_control(self) -> CheckpointRuns:
        return self.app.run_control

    def _in_thread(self, work: Callable[..., None], *args: Any) -> None:
        """A thread worker: torch's serialisation and the checks that read a checkpoint never hold up the UI."""
        self.app.run_worker(partial(work, *args), group="checkpoint", thread=True, exit_on_error=False)

    def is_saved(self, trainer: Trainer, position: str) -> bool:
        """These weights (trainer at position) were saved by ctrl+s."""
        return self._saved == (trainer, position)

    def _confined(self, path: str) -> str:
        """Served: the dialog's confined path checked again just before it is opened (resolved anew: a symlink put
        in its place since the dialog leads nowhere outside). Unchanged in a terminal."""
        served = self.app.served
        return path if served is None else str(served.confine(path))

    # ----- save -----

    def save(self) -> None:
        trainer = self.run_control.trainer
        if trainer is None:
            self.app.notify("nothing to save yet: the model is still loading", severity="warning")
            return

        def chosen(path: str | None) -> None:
            if path:
                self.last_path = shown(path)  # served: the session's own name, not the server's path
                self._save_checked(trainer, path)

        from tui.app.screens import SaveScreen

        self.app.push_screen(SaveScreen(self.last_path), chosen)

    def _save_checked(self, trainer: Trainer, path: str, force: bool = False) -> None:
        """Save after checking the target: a directory, the corpus or an unwritable folder is refused; an existing
        file that is not an rnn-tui checkpoint is replaced only if the user says so in a dialog."""
        from engine.outputs import NotOursError, OutputError, check_output_target

        try:
            target = check_output_target(path, "checkpoint", corpus=trainer.corpus.source, force=force)
        except NotOursError as exc:
            from tui.app.screens import ConfirmScreen

            def answered(yes: bool | None) -> None:
                if yes:
                    self._save_checked(trainer, path, force=True)

            self.app.push_screen(ConfirmScreen(shown(exc.question), confirm="Replace"), answered)
            return
        except OutputError as exc:
            self.failed(CheckpointFailed(f"{exc}; nothing was saved"))
            return
        if self.app.served is not None:  # the session's disk quota, checked before anything is written
            try:
                size = checkpoint_bytes(trainer.config, len(trainer.vocab))
                self.app.served.check_room(size, str(target) if target.exists() else None)
            except RnnTuiError as exc:
                self.failed(CheckpointFailed(f"{exc}; nothing was saved"))
                return
        self._in_thread(self._save, trainer, str(target))

    def _save(self, trainer: Trainer, path: str) -> None:
        """In a thread."""
        from engine.outputs import OutputError

        try:
            if self.app.served is None:
                saved = trainer.save(self._confined(path))
            else:  # a served checkpoint goes to the student's computer: no server path in it
                from engine.checkpoint import save
                from tui.served import without_server_paths

                saved = without_server_paths(trainer.to_checkpoint())
                save(self._confined(path), saved)
        except OutputError as exc:  # a full disk, a folder gone read-only: the run stays, to be saved elsewhere
            self.app.post_message(CheckpointFailed(f"{exc}; the run is kept: ctrl+s saves it elsewhere"))
        except Exception as exc:
            self.app.post_message(CheckpointFailed(f"could not save {path}: {first_line(exc)}"))
        else:
            self.app.post_message(CheckpointSaved(path, saved.position(trainer.batches_per_epoch), trainer))

    def download(self) -> None:
        """Served: save the weights in the session (as ctrl+s would, to the last name used) and send them to the
        browser as a download."""
        trainer = self.run_control.trainer
        if trainer is None:
            self.app.notify("nothing to download yet: the model is still loading", severity="warning")
            return
        try:
            path = self.last_path if self.app.served is None else str(self.app.served.confine(self.last_path))
        except RnnTuiError:
            path = DEFAULT_CHECKPOINT
        self._save_checked(trainer, path)

    def deliver(self, path: str) -> None:
        """Served in a browser: a saved file also goes to the student's computer (the browser's download)."""
        if self.app.served is not None and self.app.is_web:
            self.app.deliver_binary(path, mime_type="application/octet-stream")

    def saved(self, message: CheckpointSaved) -> None:
        self.deliver(message.path)
        if message.trainer is not None:
            self._saved = (message.trainer, message.position)
        self.run_control.panels.samples.add_note(shown(f"saved {message.path} ({message.position})"))
        self.app.notify(f"saved {message.path} ({message.position})", title="checkpoint")

    def failed(self, message: CheckpointFailed) -> None:
        self.app.notify(message.message, title="checkpoint", severity="error", timeout=8)
        self.run_control.panels.samples.add_note(shown(message.message), error=True)

    def unsaved(self) -> tuple[Trainer, str] | None:
        """(trainer, position) of weights trained and saved nowhere (a stopped run's, or a failed one's last good
        weights too); None when there are none."""
        trainer = self.run_control.trainer
        if trainer is None:
            return None
        position = trainer.position()
        if position == "epoch 0" or self.is_saved(trainer, position):
            return None
        return trainer, position

    def rescue_unsaved(self, why: str) -> str | None:
        """As the app quits on a signal: weights trained and saved nowhere to ./rnn-tui.rescued-STAMP.ckpt (else the
        temp folder), so a closed terminal or a `kill` loses no training. The line to tell once the app has gone;
        None when nothing needed rescuing (or in a served session, whose folder goes with its tab). Saves: call it
        from a thread when the UI must stay live."""
        from engine.outputs import rescue_paths, write_first

        unsaved = self.unsaved()
        if unsaved is None or self.app.served is not None:
            return None
        trainer, position = unsaved
        places = rescue_paths(DEFAULT_CHECKPOINT, own_folder=True)
        written, tried = write_first(lambda path: trainer.save(str(path)), places)
        if written is None:
            return f"rnn-tui: {why}: the run's weights ({position}) were not saved: {'; '.join(tried)}"
        return (
            f"rnn-tui: {why}: the run's weights ({position}) were not saved; they are in {written} "
            f"(rnn-tui --resume {written} continues them)"
        )

    # ----- load: continue training, or generate only -----

    def load(self) -> None:
        def chosen(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            mode, path = answer
            self.last_path = shown(path)
            if mode == "generate":
                self._in_thread(self._load_for_generation, path)
                return
            base = self.run_control.base_config
            overrides = {"corpus": base.corpus} if base.corpus else {}
            try:
                epochs = self.run_control.panels.settings.value("epochs")
            except ConfigError:
                epochs = None
            form_epochs = epochs if isinstance(epochs, int) else None
            self._in_thread(self._check_continue, path, overrides, form_epochs)

        from tui.app.screens import LoadScreen

        self.app.push_screen(LoadScreen(self.last_path), chosen)

    def _wait_for_torch(self) -> None:
        loader = self.run_control.loader
        if not loader.wait(NOT_CANCELLED):
            raise RnnTuiError(loader.error or "torch is not loaded")

    def _refused(self, path: str, exc: Exception) -> CheckpointFailed:
        if isinstance(exc, RnnTuiError):
            named = str(exc) if path in str(exc) else f"{path}: {exc}"  # which checkpoint, if the error does not say
            return CheckpointFailed(f"{named}; the current run goes on")
        return CheckpointFailed(f"could not load {path}: {first_line(exc)}; the current run goes on")

    def _load_for_generation(self, path: str) -> None:
        """In a thread."""
        try:
            self._wait_for_torch()
            from engine import checkpoint as checkpoints

            loaded = checkpoints.load(self._confined(path))
            checkpoints.check_shapes(loaded)  # before building: a refused build would still have drawn from torch's RNG
            model = loaded.build_model()
        except Exception as exc:
            self.app.post_message(self._refused(path, exc))
        else:
            self.app.post_message(
                CheckpointLoaded(
                    path,
                    model,
                    loaded.vocab,
                    loaded.config,
                    loaded.position(),
                    tuple(loaded.history),
                    tuple(loaded.timeline),
                    self._training_corpus(loaded),
                )
            )

    def _training_corpus(self, loaded: Checkpoint) -> Corpus | None:
        """In a thread: the text the checkpoint trained on and held out, read as its settings read them, for the
        Timeline to find copies in its samples and the plot to keep its n-gram lines only when they count that same
        split; None when that corpus is not on this machine (nothing is downloaded for it). Served:
        None, a checkpoint does not choose which server file is read (the Timeline uses the session's own text)."""
        if self.app.served is not None:
            return None
        from engine.data.corpus import corpus_for, local_corpus

        config = loaded.config
        if not config.corpus and Path(loaded.corpus).is_file():  # found by the lookup when it trained: as lab does
            config = config.with_changes(corpus=loaded.corpus)
        try:
            local = local_corpus(config)
            if local is None:
                return None
            read = corpus_for(local[0], config, local[1])
        except RnnTuiError:
            return None
        return read if read.vocab == loaded.vocab else None

    def loaded(self, message: CheckpointLoaded) -> None:
        from tui.app.checkpoint_weights import CheckpointWeights

        name = Path(message.path).name
        self.run_control.run_book.add_history(message.config, message.history, f"checkpoint {name}")
        weights = CheckpointWeights(
            message.model,
            message.vocab,
            message.config,
            f"{name}, {message.position}",
            message.timeline,
            message.corpus,
            message.history,
        )
        self.run_control.show_checkpoint(weights, shown(f"loaded {message.path} for generating ({message.position})"))
        self.app.action_focus_prefix()

    def _check_continue(self, path: str, overrides: dict[str, Any], form_epochs: int | None) -> None:
        """In a thread: everything that would refuse the checkpoint is found before the current run is stopped."""
        try:
            self._wait_for_torch()
            from engine.session import check_resume

            checkpoint = check_resume(self._confined(path), overrides)
        except Exception as exc:
            self.app.post_message(self._refused(path, exc))
            return
        plan = plan_continue(
            Path(path).name, checkpoint.position(), checkpoint.epoch, checkpoint.config.epochs, form_epochs, overrides
        )
        self.app.post_message(ContinueChecked(path, plan.overrides, plan.note))

    def continue_checked(self, message: ContinueChecked) -> None:
        # The note is told once the session is open, after its own "resumed … at …" (and in the status).
        self.run_control.start(message.overrides, resume=message.path, notes=(message.note,))
