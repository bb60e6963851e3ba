"""Messages the worker threads send to the app, which hands each to its owner (tui.app.run_control,
tui.app.checkpoint_flow). Dataclasses: plain data, safe to post from any thread.

Textual's Message.__post_init__ sets up the message, so a @dataclass subclass needs no __init__ of its own.
Engine events themselves do not travel as messages: the trainer's listener puts them in an EventBuffer
that run control drains a few times a second (see tui.app.worker), so a fast model cannot flood the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

from engine.config import TrainConfig
from engine.data.corpus import Corpus, Vocab
from engine.events import EpochEnd

if TYPE_CHECKING:  # torch-backed: the first frame must not wait for torch
    from engine.model import CharRNN
    from engine.timeline import SampleRecord
    from engine.trainer import Trainer


@dataclass
class Loading(Message):
    """A run is being prepared; stage says what it is waiting for (torch, the corpus)."""

    run_id: int
    stage: str


@dataclass
class SessionReady(Message):
    """The trainer of a run is built; training starts (or waits, if paused) right after this."""

    run_id: int
    config: TrainConfig
    vocab: Vocab
    corpus: str
    notes: tuple[str, ...]


@dataclass
class SessionFailed(Message):
    """A run could not start (bad corpus, bad checkpoint, sizes that do not fit) or crashed outside training."""

    run_id: int
    message: str


@dataclass
class RunEnded(Message):
    """The training thread of a run has returned: no thread of it is left."""

    run_id: int


@dataclass
class Generated(Message):
    text: str
    note: str | None  # e.g. the Traditional → Simplified conversion of the prefix
    source: str  # which weights generated it


@dataclass
class GenerateFailed(Message):
    message: str


@dataclass
class CheckpointSaved(Message):
    path: str
    position: str  # "epoch 12", or "batch 3 of 8 of epoch 13"
    trainer: Trainer | None = None  # whose weights were saved (F7 asks before discarding weights saved nowhere)


@dataclass
class CheckpointLoaded(Message):
    """A checkpoint was loaded for generation only."""

    path: str
    model: CharRNN
    vocab: Vocab
    config: TrainConfig
    position: str  # "epoch 12", or "batch 3 of epoch 13"
    history: tuple[EpochEnd, ...] = ()  # for the runs compared (F10)
    timeline: tuple[SampleRecord, ...] = ()  # its run's report samples, for the Lab's Timeline
    corpus: Corpus | None = None  # the text it trained on and held out, as it read them; None: not on this machine


@dataclass
class ContinueChecked(Message):
    """A checkpoint passed every check for "continue training": the app starts the run that resumes it."""

    path: str
    overrides: dict[str, Any]  # the corpus, and the epochs to train to
    note: str  # how the epochs were chosen


@dataclass
class CheckpointFailed(Message):
    message: str
