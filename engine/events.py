"""What a trainer tells whoever listens. Plain frozen dataclasses: safe to hand to another thread."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from engine.config import TrainConfig

if TYPE_CHECKING:  # numpy-backed: the app imports events before its first frame
    from engine.lab.copies import SampleCopy

# A session's note that starts so is a hint (engine.precision's fp32 → bf16 one): a front end may show it apart.
HINT_PREFIX = "hint: "


def is_hint(note: str) -> bool:
    return note.startswith(HINT_PREFIX)


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
    held_out_chars: int = 0  # characters of held-out text evaluated after each epoch; 0: held-out evaluation off
    precision: str = "fp32"  # the arithmetic training uses and why: "fp32", "bf16 (auto: avx512_bf16 on this CPU)"


@dataclass(frozen=True)
class BatchDone:
    """Progress within an epoch: batch of num_batches has been trained."""

    epoch: int
    batch: int
    num_batches: int


# The carried-state trap, one threshold for every verdict (the memory horizon in the Lab and `lab horizon`, the
# carried-state lesson): the training text read in one pass from a zero state (horizon_perplexity, the horizon's right
# end) at TRAP_RATIO times the training figure or more. Measured (README): a trapped GRU ×333, models that are no
# trap ×1.08 to ×1.4. Not the fresh figure: a cold start alone puts it at ×2.2 for the book's run, ×7 for a
# `--state epoch` GRU, neither of them a trap.
TRAP_RATIO = 2.0


def is_trap(whole_text: float, train: float) -> bool:
    """The whole training text from a zero state at TRAP_RATIO × the training perplexity or more."""
    return whole_text >= TRAP_RATIO * train


@dataclass(frozen=True)
class EpochEnd:
    """An epoch's figures, as the book prints them."""

    epoch: int
    perplexity: float  # exp(mean cross-entropy over every predicted character)
    seconds: float  # training time of the epoch, pauses excluded
    chars: int  # characters predicted (and trained on) in the epoch
    lr: float
    clip: float
    # Held-out evaluation (None when off; engine/evaluate.py says how): perplexity on the held-out text from a zero
    # state, the training text's perplexity from a zero state, and the share of held-out targets never seen in
    # training (left out of val_perplexity with the book's vocabulary; counted as <unk> with d2l-en's).
    val_perplexity: float | None = None
    fresh_perplexity: float | None = None
    val_unseen_share: float | None = None
    eval_seconds: float | None = None  # time the evaluation took, after the epoch (not in seconds)
    # The other live settings that change what training does, as lr and clip above (Setting.per_epoch); a
    # checkpoint's history from before one existed reads its default.
    weight_decay: float = 0.0
    decay: str = "l2"
    # The learning rate the epoch's last batch took under --schedule (engine/schedule.py): lr × the schedule's factor.
    # None with the constant schedule (lr itself), and in histories from before schedules.
    scheduled_lr: float | None = None
    # Gradient norms over the epoch's steps (engine/trainer.py, GradNorm): the global L2 norm of all gradients before
    # clipping, its mean and largest, and the share of steps whose gradients clipping scaled down (0.0 with clip 0).
    # None in a history from before they were measured.
    grad_norm: float | None = None
    grad_norm_max: float | None = None
    clipped_share: float | None = None
    # Gate saturation (engine/lab/gates.py), GRU and LSTM with held-out evaluation on: per gate name ("reset",
    # "update" / "input", "forget", "output"), {"low": [share < 0.1 per layer], "high": [share > 0.9 per layer]} over
    # the held-out text after the epoch. None for a plain RNN, with held-out off, and in histories from before it.
    gate_saturation: dict[str, dict[str, list[float]]] | None = None
    # Memory, at sampling epochs only (None on the others). horizon_perplexity: the training text read in one pass
    # from a zero state, the memory horizon's long-context end (engine/lab/horizon.py; None with held-out evaluation
    # off): close to the training figure unless the model leans on a state it never has (the carried-state trap).
    # copy_longest / copy_share: of the samples generated at this epoch, the most generated characters in one stretch
    # found verbatim in the training text (the prefix not counted: since the one detector, engine/lab/copies.py, not
    # before) and the share of generated characters inside copied stretches of ≥ 8.
    horizon_perplexity: float | None = None
    copy_longest: int | None = None
    copy_share: float | None = None
    # The test text's perplexity (engine/trainer.py, Trainer.test_figure), on the run's last epoch only: read at the
    # best held-out epoch's weights (test_epoch) where the trainer kept them. Nothing that chooses reads it.
    test_perplexity: float | None = None
    test_epoch: int | None = None

    @property
    def chars_per_second(self) -> float:
        return self.chars / self.seconds if self.seconds > 0 else 0.0

    def record(self) -> dict[str, Any]:
        """The epoch as one JSON object: what --metrics appends and a sweep's trial history keeps."""
        return {**asdict(self), "chars_per_second": self.chars_per_second}

    def book_line(self) -> str:
        return f"epoch {self.epoch}, perplexity {self.perplexity:f}, time {self.seconds:.2f} sec"

    def held_out_line(self, unseen_counted: bool = False) -> str | None:
        """The line after the book's: held-out and fresh-state perplexity and the unseen share (None when off).

        unseen_counted: the vocabulary has <unk> (d2l-en), so unseen characters count as <unk> instead of being
        left out.
        """
        if self.val_perplexity is None:
            return None
        share = self.val_unseen_share or 0.0
        how = "counted as <unk>" if unseen_counted else "left out"
        return (
            f"held-out perplexity {self.val_perplexity:f}, fresh-state perplexity {self.fresh_perplexity:f} "
            f"(from a zero state; {share:.1%} of held-out characters never seen in training, {how})"
            + self._clipped_words()
        )

    def _clipped_words(self) -> str:
        """'; clipped 99.6% of steps' for the held-out line ('' in a history from before it was measured)."""
        if self.clipped_share is None:
            return ""
        return f"; clipped {self.clipped_share:.1%} of steps" + (" (clip off)" if self.clip <= 0 else "")

    def gradient_line(self) -> str | None:
        """The epoch's gradient norms and clipping in words (None in a history from before they were measured)."""
        if self.grad_norm is None or self.grad_norm_max is None or self.clipped_share is None:
            return None
        clipping = f"clipped {self.clipped_share:.1%} of steps at θ {self.clip:g}" if self.clip > 0 else "clip off"
        return f"gradient norm {self.grad_norm:.4g} mean, {self.grad_norm_max:.4g} max before clipping; {clipping}"

    def memory_line(self) -> str | None:
        """At a sampling epoch: the horizon's long-context end and how much of the samples is copied (None else)."""
        parts = []
        if self.horizon_perplexity is not None:
            parts.append(f"whole training text from a zero state perplexity {self.horizon_perplexity:f}")
        if self.copy_longest is not None and self.copy_share is not None:
            parts.append(
                f"samples: longest verbatim copy of the training text {self.copy_longest} characters, "
                f"{self.copy_share:.0%} of sampled characters in copies of 8 or more"
            )
        return "; ".join(parts) or None


def unseen_policy(unseen_counted: bool) -> str:
    """In words, how characters never seen in training count in the held-out perplexity."""
    if unseen_counted:
        return "held-out characters never seen in training count as <unk>, as the English edition counts them"
    return "held-out characters never seen in training are left out of the held-out perplexity (their share is shown)"


def best_held_out(history: list[EpochEnd]) -> EpochEnd | None:
    """The epoch with the lowest held-out perplexity so far (the earliest of equals); None without any."""
    best: EpochEnd | None = None
    best_value = math.inf
    for epoch in history:
        value = epoch.val_perplexity
        if value is not None and value < best_value:  # NaN (no counted target) never compares less
            best, best_value = epoch, value
    return best


@dataclass(frozen=True)
class Samples:
    """Text generated from each prefix at a prediction period."""

    epoch: int
    samples: tuple[tuple[str, str], ...]  # (prefix, prefix + generated text)
    # What each sample copies from the training text, in the same order (engine/lab/copies.py); () when not computed.
    copies: tuple[SampleCopy, ...] = ()


@dataclass(frozen=True)
class Paused:
    epoch: int  # epochs finished so far


@dataclass(frozen=True)
class Resumed:
    epoch: int


@dataclass(frozen=True)
class SettingsApplied:
    """Live settings took effect at a batch boundary. config is the trainer's whole configuration from now on: the
    one record of the live settings, which the app shows instead of merging the changes into copies of its own."""

    changes: tuple[tuple[str, object], ...]
    config: TrainConfig


@dataclass(frozen=True)
class TestFigure:
    """The test text's perplexity, measured once a run ends (engine/trainer.py): reported, never used to choose."""

    perplexity: float
    epoch: int  # whose weights were read
    best: bool  # True: the best held-out epoch's weights, kept by the trainer; False: the weights as training left them
    chars: int  # characters of test text
    unseen_share: float  # of the test targets, never seen in training (left out without <unk>, <unk> with it)

    def line(self) -> str:
        """'test perplexity 123.456789': the headless run's last line."""
        return f"test perplexity {self.perplexity:f}"

    def describe(self) -> str:
        """Which weights and text the figure read, in one line."""
        whose = f"the best held-out epoch {self.epoch}'s weights" if self.best else f"epoch {self.epoch}'s weights"
        return (
            f"test text: {self.chars:,} characters after the held-out text, read at {whose} "
            f"({self.unseen_share:.1%} never seen in training); no choice read it"
        )


@dataclass(frozen=True)
class Finished:
    """Training ended without error: all epochs done, or stopped on request."""

    epoch: int
    stopped: bool  # stopped on request (a user, ctrl+c); a run that ends early on its own has stopped False
    reason: str = ""  # why a run ended before its epochs on its own (e.g. patience), for the user; "" otherwise
    test: TestFigure | None = None  # the test text's perplexity (None without a test text, or before any epoch)


@dataclass(frozen=True)
class Failed:
    """Training stopped on an error; the weights are those from before the failing step."""

    epoch: int
    batch: int
    message: str
    # The optimizer step (of the whole run, (epoch - 1) × batches per epoch + batch) whose loss or gradient norm was
    # the first non-finite or diverged value; 0 when the failure is not a divergence.
    step: int = 0


@dataclass(frozen=True)
class GradNorm:
    """One training step's gradients: the global L2 norm before and after clipping (engine/trainer.py)."""

    step: int  # of the whole run: (epoch - 1) × batches per epoch + batch
    epoch: int
    before: float
    after: float
    clip: float  # θ at this step; 0: clipping off
    clipped: bool  # clipping scaled the gradients down (torch's rule: θ / (norm + 1e-6) < 1)


Event = Started | BatchDone | EpochEnd | Samples | Paused | Resumed | SettingsApplied | Finished | Failed
Listener = Callable[[Event], None]  # what a trainer tells its events to
