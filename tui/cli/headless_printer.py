"""What `rnn-tui train --headless` prints, one method a kind of line. The book's report lines (an epoch's figures and
samples, the verdicts against counting, a lesson's observation, the test figure) go to stdout; what the run says
about itself (its settings, notes, warnings, saves) to stderr. The printer holds no run: each method is given what
its line shows (tui.cli.train's steps decide when)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from engine.config import describe_layers, flag_name
from engine.errors import worded
from tui.cli.lines import PROG, say

if TYPE_CHECKING:
    from engine.events import EpochEnd, Failed, Finished, Samples, Started, TestFigure
    from engine.lab.ngram import NgramTable
    from engine.lessons import Lesson
    from engine.observations import Observation
    from engine.session import Session

# Said under the first samples that come out blank (an early model's greedy samples are spaces).
BLANK_SAMPLES_NOTE = "   (blank so far: the model's likeliest next character is still a space"


class HeadlessPrinter:
    def __init__(self) -> None:
        self.told_blank = False  # the blank samples explained (once a run)

    # Before the run: what it is asked to do.

    def lesson(self, lesson: Lesson) -> None:
        say(f"lesson {lesson.name}: {lesson.title} ({lesson.exercise})")
        say(f"  question: {lesson.question}")
        say(f"  watch: {lesson.watch}")

    def note(self, note: str) -> None:
        """A note of the session's (a fallback corpus, a preset's settings overridden), its settings named by flag."""
        say(worded(note, flag_name))

    def warning(self, text: str) -> None:
        say(f"{PROG}: warning: {text}")

    def prefix_not_sampled(self, prefix: str, unknown: list[str]) -> None:
        shown = ", ".join(repr(c) for c in unknown[:5])
        self.warning(f"prefix {prefix!r} is not sampled: {shown} not in this corpus's vocabulary")

    def nothing_to_train(self, trained: int, wanted: int) -> None:
        say(
            f"nothing to train: the checkpoint has trained {trained} epoch{'s' * (trained != 1)} "
            f"and --epochs is {wanted}; pass --epochs above {trained} to go on"
        )

    # The run's events.

    def started(self, event: Started, session: Session) -> None:
        """The run's first lines: the model, corpus and machine; the held-out text; precision's warning and hint."""
        from engine.precision import fp32_hint
        from engine.session import describe_held_out

        config, trainer = session.config, session.trainer
        say(
            f"training {config.cell} ({config.hidden} hidden, {describe_layers(config.layers)}) on {event.corpus}: "
            f"{event.num_chars:,} characters, vocabulary {event.vocab_size:,}, "
            f"{event.batches_per_epoch} batches per epoch, device {event.device}, precision {event.precision}, "
            f"seed {event.seed}"
        )
        say(describe_held_out(config, session.corpus))
        rows = config.batch_size * config.num_steps
        hint = fp32_hint(trainer.precision, trainer.device, event.vocab_size, config.hidden, rows, cell=config.cell)
        for line in (trainer.precision.warning, hint):
            if line:
                say(line)

    def epoch(self, epoch: EpochEnd, has_unk: bool, counting: NgramTable | None) -> None:
        """The book's line of an epoch, then its held-out figures and their verdict against counting (or, held-out
        evaluation off, the gradients' line), then its memory line."""
        from engine.lab.verdict import verdict

        say(epoch.book_line(), sys.stdout)
        held_out = epoch.held_out_line(has_unk)  # ends with the clipped share
        gradients = epoch.gradient_line()
        if held_out:
            say(held_out, sys.stdout)
            judged = verdict(counting, epoch.val_perplexity) if counting is not None else None
            if judged is not None:
                say(judged.line(), sys.stdout)
        elif gradients:  # held-out evaluation off: the gradient norms and clipped share on a line of their own
            say(gradients, sys.stdout)
        memory = epoch.memory_line()
        if memory:
            say(memory, sys.stdout)

    def samples(self, event: Samples, greedy: bool) -> None:
        """An epoch's samples, and once a run, why blank ones are blank."""
        for _, text in event.samples:
            say(f" - {text}", sys.stdout)
        generated = [text[len(prefix) :] for prefix, text in event.samples]
        if not self.told_blank and any(g and not g.strip() for g in generated):  # once: a newcomer's first question
            self.told_blank = True
            say(BLANK_SAMPLES_NOTE + (", and greedy sampling picks it every time)" if greedy else ")"), sys.stdout)

    def failed(self, event: Failed) -> None:
        say(f"{PROG}: {event.message}")

    def finished(self, event: Finished, position: str) -> None:
        if event.reason:
            say(event.reason)
        elif event.stopped:
            say(f"stopped after {position}")

    # After the run: where its weights went, what it showed.

    def saved(self, path: str, position: str) -> None:
        say(f"saved checkpoint {path} ({position})")

    def saved_elsewhere(self, failure: str, position: str, path: str) -> None:
        say(f"{PROG}: error: {failure}; the weights ({position}) were saved to {path} instead")

    def not_saved(self, failure: str) -> None:
        say(f"{PROG}: error: {failure}; the weights could not be saved anywhere")

    def observation(
        self, lesson: Lesson, observation: Observation, elsewhere: str | None, problem: str | None, csv: str | None
    ) -> None:
        """A lesson's observation of the run, and where its row in the class's CSV went."""
        say(f"lesson {lesson.name}: {observation.text}", sys.stdout)
        if problem:
            self.warning(problem)
        elif elsewhere:
            say(elsewhere)
        elif csv:
            say(f"observation appended to {csv}")

    def best_saved(self, path: str, best: EpochEnd) -> None:
        say(
            f"saved the best held-out epoch to {path} (epoch {best.epoch}, held-out perplexity {best.val_perplexity:f})"
        )

    def test(self, test: TestFigure, counting: NgramTable | None) -> None:
        """The run's last lines: the test text's figure, which no choice read, and its verdict against counting."""
        from engine.lab.verdict import verdict

        say(test.describe())
        judged = verdict(counting, None, test.perplexity) if counting is not None else None
        if judged is not None:
            say(judged.line(), sys.stdout)
        say(test.line(), sys.stdout)
