"""CheckpointWeights: a checkpoint loaded for generating only, in a module of its own so that run control (which
holds it), the checkpoint flow (which makes it) and the insight screens (which read it) import it without importing
each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch-backed: annotations only
    from engine import events
    from engine.config import TrainConfig
    from engine.data.corpus import Corpus, Vocab
    from engine.model import CharRNN
    from engine.timeline import SampleRecord


@dataclass(frozen=True)
class CheckpointWeights:
    """A checkpoint loaded for generating only (ctrl+o → Generate): no trainer, its own settings and vocabulary."""

    model: CharRNN
    vocab: Vocab
    config: TrainConfig
    label: str  # "book.ckpt, epoch 250"
    timeline: tuple[SampleRecord, ...] = ()  # its run's report samples (the Lab's Timeline browses them)
    corpus: Corpus | None = None  # what it trained on and held out, where found: copies, its n-gram lines
    history: tuple[events.EpochEnd, ...] = ()  # its run's epochs: the Status panel and the plot show them
