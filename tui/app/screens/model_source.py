"""Which weights the insight screens look at: the loaded checkpoint's, else a copy of the training model's.

Called from a thread worker (copying the model takes the trainer's weights lock, and may wait for a batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from engine.data.corpus import Vocab
from engine.errors import RnnTuiError

if TYPE_CHECKING:  # torch-backed, or importing the app: annotations only
    from engine.model import CharRNN
    from engine.trainer import Trainer
    from tui.app.checkpoint_weights import CheckpointWeights


@dataclass(frozen=True)
class ModelSource:
    model: CharRNN  # a copy nobody trains
    vocab: Vocab
    label: str  # which weights: "weights after epoch 12", "book.ckpt, epoch 250"
    corpus_text: str | None  # the text the run trains on, when there is a run


class WeightsOnScreen(Protocol):
    """What current_model reads of the run on screen (app.run_control): a loaded checkpoint, else the trainer."""

    @property
    def trainer(self) -> Trainer | None: ...
    @property
    def checkpoint(self) -> CheckpointWeights | None: ...
    @property
    def vocab(self) -> Vocab | None: ...


def current_model(runs: WeightsOnScreen) -> ModelSource:
    """The weights generation uses now: a loaded checkpoint's, else a copy of the training model's; RnnTuiError when
    there are none yet."""
    trainer = runs.trainer
    corpus_text = trainer.corpus.text if trainer is not None else None
    if runs.checkpoint is not None:
        weights = runs.checkpoint
        same_corpus = trainer is not None and trainer.vocab == weights.vocab
        return ModelSource(weights.model, weights.vocab, weights.label, corpus_text if same_corpus else None)
    if trainer is None or runs.vocab is None:
        raise RnnTuiError("the model is still loading; try again in a moment")
    return ModelSource(trainer.copy_model(), trainer.vocab, f"weights after {trainer.position()}", corpus_text)
