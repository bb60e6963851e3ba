"""Generation in the app: the generate box's request, answered from a thread worker with the weights on screen (a
loaded checkpoint's, else a copy of the training model's: tui.app.screens.model_source.current_model)."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING, Protocol

from textual.css.query import NoMatches

from engine.errors import RnnTuiError, first_line
from tui.app.messages import Generated, GenerateFailed
from tui.app.screens.model_source import WeightsOnScreen, current_model

if TYPE_CHECKING:  # annotations only
    from tui.app.hosts import WorkerHost
    from tui.app.main_screen import MainScreen
    from tui.app.widgets.generate import GenerateRequested


class GenerationRuns(WeightsOnScreen, Protocol):
    """What generation reads of the run on screen (tui.app.run_control.RunControl): its weights (as current_model reads
    them: tui.app.screens.model_source.WeightsOnScreen) and its panels."""

    @property
    def panels(self) -> MainScreen: ...


class GenerationFlow:
    """One per app (app.generation): a request runs in a thread (a newer one replaces it), its answer is shown."""

    def __init__(self, app: WorkerHost, runs: GenerationRuns) -> None:
        self.app = app
        self.runs = runs

    def generate(self, request: GenerateRequested) -> None:
        """The generate box's request, answered from a thread (a copy of the weights is taken there; before there
        are any, tui.app.screens.model_source.current_model says the model is still loading)."""
        self.app.run_worker(
            partial(self._generate, request), group="generate", thread=True, exclusive=True, exit_on_error=False
        )

    def _generate(self, request: GenerateRequested) -> None:
        """In a thread: generate from the weights on screen, and post the text (or why there is none)."""
        try:
            from engine.data.convert import resolve_prefix
            from engine.generate import capped_length, fresh_generator, generate

            source = current_model(self.runs)  # a copy: training goes on meanwhile
            prefix, note = resolve_prefix(request.prefix, source.vocab.char_to_idx)
            length, cap_note = capped_length(request.length)
            note = "; ".join(n for n in (note, cap_note) if n) or None
            # Its own random generator: a sample drawn from torch's global one would shift the dropout masks of
            # the run training meanwhile, and so its result.
            generator = fresh_generator()
            text = generate(source.model, source.vocab, prefix, length, request.temperature, request.top_k, generator)
        except RnnTuiError as exc:
            self.app.post_message(GenerateFailed(str(exc)))
        except Exception as exc:
            self.app.post_message(GenerateFailed(f"generation failed: {first_line(exc)}"))
        else:
            self.app.post_message(Generated(text, note, source.label))

    def generated(self, message: Generated) -> None:
        with contextlib.suppress(NoMatches):  # a worker's late answer while the app closes
            self.runs.panels.generate_box.show_result(message.text, message.note, message.source)

    def generate_failed(self, message: GenerateFailed) -> None:
        with contextlib.suppress(NoMatches):
            self.runs.panels.generate_box.show_error(message.message)
