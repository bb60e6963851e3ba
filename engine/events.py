"""What a trainer tells whoever listens. Plain frozen dataclasses: safe to hand to another thread."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Started:
    """The trainer is built and about to train epoch start_epoch + 1."""

    start_epoch: int
    epochs: int
    batches_per_epoch: int
    device: str
    corpus: str
    vocab_size: int
    num_chars: int
    seed: int


@dataclass(frozen=True)
class BatchDone:
    """Progress within an epoch: batch of num_batches has been trained."""

    epoch: int
    batch: int
    num_batches: int


@dataclass(frozen=True)
class EpochEnd:
    """An epoch's figures, as the book prints them."""

    epoch: int
    perplexity: float  # exp(mean cross-entropy over every predicted character)
    seconds: float  # training time of the epoch, pauses excluded
    chars: int  # characters predicted (and trained on) in the epoch
    lr: float
    clip: float
    # Held-out evaluation (None when off): perplexity on the held-out text from a zero state, the training
    # text's perplexity from a zero state, and the share of held-out targets left out as never seen in training.
    val_perplexity: float | None = None
    fresh_perplexity: float | None = None
    val_unseen_share: float | None = None

    @property
    def chars_per_second(self) -> float:
        return self.chars / self.seconds if self.seconds > 0 else 0.0

    def book_line(self) -> str:
        return f"epoch {self.epoch}, perplexity {self.perplexity:f}, time {self.seconds:.2f} sec"


@dataclass(frozen=True)
class Samples:
    """Text generated from each prefix at a prediction period."""

    epoch: int
    samples: tuple[tuple[str, str], ...]  # (prefix, prefix + generated text)


@dataclass(frozen=True)
class Paused:
    epoch: int  # epochs finished so far


@dataclass(frozen=True)
class Resumed:
    epoch: int


@dataclass(frozen=True)
class SettingsApplied:
    """Live settings took effect at a batch boundary."""

    changes: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Finished:
    """Training ended without error: all epochs done, or stopped on request."""

    epoch: int
    stopped: bool
    reason: str = ""  # why a run ended before its epochs on its own (e.g. patience), for the user; "" otherwise


@dataclass(frozen=True)
class Failed:
    """Training stopped on an error; the weights are those from before the failing step."""

    epoch: int
    batch: int
    message: str


Event = Started | BatchDone | EpochEnd | Samples | Paused | Resumed | SettingsApplied | Finished | Failed
