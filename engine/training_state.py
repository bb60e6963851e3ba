"""What a run has done so far: its TrainingState (what, with the config and vocabulary, a checkpoint keeps to
continue exactly) and the log of its steps' gradient norms the app reads. Shared by the trainer (engine.trainer) and
its parts (engine.trainer_controls, engine.epoch_figures)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from engine import events
from engine.checkpoint import EpochProgress
from engine.model import State
from engine.timeline import SampleRecord

# Per-step gradient norms kept for the app's plot (GradNormLog): about 30 epochs of the book's run per 10,000.
GRAD_LOG_STEPS = 20_000


class GradNormLog:
    """The latest steps' gradient norms of the run, appended by the training thread, read by the app's.

    Bounded (GRAD_LOG_STEPS, the oldest dropped in halves), and locked: a reader gets whole records, never a list
    being trimmed.
    """

    def __init__(self, limit: int = GRAD_LOG_STEPS) -> None:
        self.limit = limit
        self._steps: list[events.GradNorm] = []
        self._lock = threading.Lock()

    def append(self, record: events.GradNorm) -> None:
        with self._lock:
            self._steps.append(record)
            if len(self._steps) > self.limit:
                del self._steps[: len(self._steps) - self.limit // 2]

    def since(self, step: int) -> list[events.GradNorm]:
        """The kept records after step (0: all of them), oldest first."""
        with self._lock:
            steps = self._steps
            start = len(steps)
            while start > 0 and steps[start - 1].step > step:  # usually a few: the steps since the last look
                start -= 1
            return steps[start:]


@dataclass
class TrainingState:
    """Everything that, with the config and vocabulary, lets a run continue exactly where it stopped."""

    epoch: int = 0
    history: list[events.EpochEnd] = field(default_factory=list)
    carried: State | None = None  # the consecutive sampler's hidden state, carried across batches (and epochs)
    progress: EpochProgress | None = None  # the batches of epoch + 1 trained so far (None between epochs)
    timeline: list[SampleRecord] = field(default_factory=list)  # every report's samples (engine/timeline.py)
