"""The Shapes panel's preview: the tensor shapes of the settings in the form, before they are applied.

Another preset or corpus has another vocabulary, so the preview reads the vocabulary size the form's settings
would train with: the run's own when they read the corpus alike, else from the corpus in a thread worker.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING, Protocol

from engine.config import VOCAB_SETTINGS, SettingValue, TrainConfig, input_width
from tui.app.worker import NOT_CANCELLED

if TYPE_CHECKING:  # annotations only
    from engine.data.corpus import Vocab
    from tui.app.hosts import WorkerHost
    from tui.app.main_screen import MainScreen
    from tui.app.worker import EngineLoader

VocabKey = tuple[SettingValue, ...]  # the settings a vocabulary depends on (engine.config.VOCAB_SETTINGS)


class PreviewRuns(Protocol):
    """What the preview reads of the run on screen (tui.app.run_control.RunControl)."""

    @property
    def vocab(self) -> Vocab | None: ...
    @property
    def config(self) -> TrainConfig | None: ...
    @property
    def loader(self) -> EngineLoader: ...
    @property
    def panels(self) -> MainScreen: ...
    def form_config(self, quiet: bool = False) -> TrainConfig | None: ...


def vocab_key(config: TrainConfig) -> VocabKey:
    return tuple(getattr(config, name) for name in VOCAB_SETTINGS)


class ShapesPreview:
    """One per run control (run_control.shapes): wanted is set when the form or the run changes, and the next
    refresh draws the preview."""

    def __init__(self, app: WorkerHost, runs: PreviewRuns) -> None:
        self.app = app
        self.runs = runs
        self.wanted = False  # drawn again on the next refresh
        self._vocab_sizes: dict[VocabKey, int | None] = {}  # the form's data settings → vocabulary size

    def draw(self) -> None:
        runs = self.runs
        if runs.vocab is None:
            return  # asked again on the next refresh
        self.wanted = False
        config = runs.form_config(quiet=True)
        if config is None:
            return
        from engine.shapes import layer_shapes  # arithmetic on the sizes: no torch, cheap enough for the UI thread

        pending = runs.config is not None and bool(config.structural_differences(runs.config))
        vocab_size = self._vocab_size(config) or len(runs.vocab)
        sizes = (config.hidden, config.layers, config.num_steps, config.batch_size)
        report = layer_shapes(config.cell, vocab_size, *sizes, input_width(config))
        runs.panels.shapes.show_report(report, pending)

    def _vocab_size(self, config: TrainConfig) -> int | None:
        """The vocabulary size config would train with: the run's own when they read the corpus alike, else read
        from the corpus in a thread (None until then, or when it would be downloaded or cannot be read)."""
        key = vocab_key(config)
        runs = self.runs
        if runs.config is not None and runs.vocab is not None and key == vocab_key(runs.config):
            return len(runs.vocab)
        if key not in self._vocab_sizes:
            self._vocab_sizes[key] = None  # asked once
            self.app.run_worker(
                partial(self._read_vocab_size, config, key), group="vocab", thread=True, exit_on_error=False
            )
        return self._vocab_sizes[key]

    def _read_vocab_size(self, config: TrainConfig, key: VocabKey) -> None:
        """In a thread, once the engine has loaded: the corpus read as config reads it. Not
        tied to the run's cancel flag: after F8 that is set, and the preview would keep the old vocabulary."""
        try:
            if not self.runs.loader.wait(NOT_CANCELLED):
                return
            from engine.data.corpus import vocab_size_for

            size = vocab_size_for(config)
        except Exception:  # an unreadable corpus: the run will say so; the preview keeps the run's vocabulary
            return
        with contextlib.suppress(RuntimeError):  # the app has closed meanwhile
            self.app.call_from_thread(self._vocab_size_read, key, size)

    def _vocab_size_read(self, key: VocabKey, size: int | None) -> None:
        self._vocab_sizes[key] = size
        self.wanted = True
