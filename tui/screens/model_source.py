"""Which weights the insight screens look at: the loaded checkpoint's, else a copy of the training model's.

Called from a thread worker (copying the model takes the trainer's weights lock, and may wait for a batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.corpus import Vocab
from engine.errors import RnnTuiError

if TYPE_CHECKING:
    from engine.model import CharRNN


@dataclass(frozen=True)
class ModelSource:
    model: CharRNN  # a copy nobody trains
    vocab: Vocab
    label: str  # which weights: "weights after epoch 12", "book.ckpt, epoch 250"
    corpus_text: str | None  # the text the run trains on, when there is a run


def run_handle(app: Any) -> Any:
    """The app's tui.worker.RunHandle, or None: app.current_run (app.run before the rename; App.run is a method)."""
    handle = getattr(app, "current_run", None) or getattr(app, "run", None)
    return handle if hasattr(handle, "trainer") else None


def current_model(app: Any) -> ModelSource:
    """The weights generation would use now (see RnnTuiApp.on_generate_requested); RnnTuiError when none yet."""
    run = run_handle(app)
    trainer = run.trainer if run is not None else None
    corpus_text = trainer.corpus.text if trainer is not None else None
    if app.checkpoint_source is not None:
        model, vocab, label = app.checkpoint_source
        return ModelSource(model, vocab, label, corpus_text if trainer is not None and trainer.vocab == vocab else None)
    if trainer is None or app.vocab is None:
        raise RnnTuiError("the model is still loading; try again in a moment")
    return ModelSource(trainer.copy_model(), trainer.vocab, f"weights after {trainer.position()}", corpus_text)
