"""What the run on screen is doing: one state type for the Status panel, the keys and Runs compared, and the
record of its progress (RunStatus) that the engine's events update and the Status panel shows."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from engine import events

if TYPE_CHECKING:
    from engine.lab.ngram import NgramTable
    from engine.lab.verdict import Verdict


class RunState(StrEnum):
    LOADING = "loading"
    RUNNING = "running"
    PAUSING = "pausing"  # asked to pause; the trainer pauses at the next batch boundary
    PAUSED = "paused"
    STEPPING = "stepping"
    STOPPING = "stopping"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    CHECKPOINT = "checkpoint"  # no training: a loaded checkpoint's weights, for generating

    @property
    def ended(self) -> bool:
        """No trainer will train this run any more (F7 starts a new one)."""
        return self in (RunState.FINISHED, RunState.STOPPED, RunState.FAILED, RunState.CHECKPOINT)

    @property
    def style(self) -> str:
        return STYLES[self]


STYLES = {
    RunState.LOADING: "yellow",
    RunState.RUNNING: "green",
    RunState.PAUSING: "yellow",
    RunState.PAUSED: "yellow",
    RunState.STEPPING: "green",
    RunState.STOPPING: "yellow",
    RunState.FINISHED: "cyan",
    RunState.STOPPED: "cyan",
    RunState.FAILED: "bold red",
    RunState.CHECKPOINT: "magenta",
}


@dataclass
class RunStatus:
    """How far the run on screen has got, as its events report it; the Status panel renders it.

    Not its settings: those are the run's own (tui.app.run_control.RunControl.config), shown from there.
    """

    state: RunState = RunState.LOADING
    stage: str = "loading torch…"  # the first thing the app does, right after its first frame
    epoch: int = 0  # epochs finished
    epochs: int = 0
    batch: int = 0
    num_batches: int = 0
    perplexity: float | None = None
    fresh_perplexity: float | None = None  # the training text from a zero state; None: held-out evaluation off
    val_perplexity: float | None = None  # the held-out text from a zero state
    val_unseen_share: float | None = None  # share of held-out targets left out: never seen in training
    best_val: tuple[int, float] | None = None  # (epoch, held-out perplexity) of the best held-out epoch so far
    # (epoch, perplexity) of the training text read in one pass from a zero state, the memory horizon's long end, at
    # the last sampling epoch (EpochEnd.horizon_perplexity); None before one
    whole_text: tuple[int, float] | None = None
    unseen_counted: bool = False  # the vocabulary has <unk> (d2l-en): unseen held-out characters count as <unk>
    held_out_chars: int = 0  # characters of held-out text evaluated after each epoch; 0: off or not known
    test: events.TestFigure | None = None  # the test text's figure, once the run has ended (Finished.test)
    counting: NgramTable | None = None  # the counting baselines of the run's corpus (tui.baselines), once computed
    recent_seconds: list[float] = field(default_factory=list)  # the last few epochs' training seconds
    chars_per_second: float | None = None
    grad_norm: float | None = None  # the latest epoch's mean gradient norm before clipping (EpochEnd.grad_norm)
    clipped_share: float | None = None  # and the share of its steps clipping scaled down
    scheduled_lr: float | None = None  # the rate --schedule gave the latest epoch's last batch (None: constant)
    device: str = ""
    precision: str = ""  # as the trainer chose it: "fp32", "bf16 (avx512_bf16 on this CPU)", "fp32 (auto: ...)"
    corpus: str = ""
    num_chars: int = 0
    vocab_size: int = 0
    seed: int | None = None
    message: str = ""
    message_is_error: bool = False
    _running_since: float | None = None
    _elapsed_before: float = 0.0

    # ----- changes driven by engine events -----

    def started(self, event: events.Started) -> None:
        self.state = RunState.RUNNING
        self.epoch, self.epochs = event.start_epoch, event.epochs
        self.batch, self.num_batches = 0, event.batches_per_epoch
        self.device, self.corpus, self.seed = event.device, event.corpus, event.seed
        self.num_chars, self.vocab_size = event.num_chars, event.vocab_size
        self.held_out_chars = event.held_out_chars
        self.precision = event.precision
        self.clock_on()

    def epoch_end(self, event: events.EpochEnd) -> None:
        self.epoch, self.perplexity = event.epoch, event.perplexity
        self.held_out(event)
        self.batch = self.num_batches
        self.recent_seconds = [*self.recent_seconds[-4:], event.seconds]
        self.chars_per_second = event.chars_per_second
        self.grad_norm, self.clipped_share = event.grad_norm, event.clipped_share
        self.scheduled_lr = event.scheduled_lr

    def held_out(self, event: events.EpochEnd) -> None:
        """Take an epoch's held-out figures (a resumed run's history passes here too)."""
        self.fresh_perplexity, self.val_perplexity = event.fresh_perplexity, event.val_perplexity
        self.val_unseen_share = event.val_unseen_share
        if event.horizon_perplexity is not None:
            self.whole_text = (event.epoch, event.horizon_perplexity)
        value = event.val_perplexity
        if value is not None and math.isfinite(value) and (self.best_val is None or value < self.best_val[1]):
            self.best_val = (event.epoch, value)

    def clock_on(self) -> None:
        if self._running_since is None:
            self._running_since = time.monotonic()

    def clock_off(self) -> None:
        if self._running_since is not None:
            self._elapsed_before += time.monotonic() - self._running_since
            self._running_since = None

    # ----- derived figures -----

    @property
    def verdict(self) -> Verdict | None:
        """The model against counting: its best held-out figure while training, its test figure once it has one."""
        if self.counting is None:
            return None
        from engine.lab.verdict import verdict

        return verdict(
            self.counting, self.best_val[1] if self.best_val else None, self.test.perplexity if self.test else None
        )

    @property
    def elapsed(self) -> float:
        running = time.monotonic() - self._running_since if self._running_since is not None else 0.0
        return self._elapsed_before + running

    @property
    def seconds_per_epoch(self) -> float | None:
        return sum(self.recent_seconds) / len(self.recent_seconds) if self.recent_seconds else None

    @property
    def remaining(self) -> float | None:
        per_epoch = self.seconds_per_epoch
        if per_epoch is None or self.state.ended:
            return None
        return per_epoch * (self.epochs - self.epoch)

    @property
    def fraction(self) -> float:
        if self.epochs <= 0:
            return 0.0
        within = self.batch / self.num_batches if self.num_batches and self.batch < self.num_batches else 0.0
        return min(1.0, (self.epoch + within) / self.epochs)
