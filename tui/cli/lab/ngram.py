"""`rnn-tui lab ngram --checkpoint CKPT`: n-gram baselines on the run's held-out text (engine/lab/ngram.py).

Registered in tui.cli.lab.lab_commands(), which builds its LabCommand (this module does not import it:
no import cycle).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.lab.ngram import NgramTable
    from engine.lab.subject import Subject
    from engine.lab.verdict import Verdict


@dataclass(frozen=True)
class NgramResult:
    table: NgramTable
    label: str
    best_held_out: tuple[int, float] | None  # the run's best held-out epoch and perplexity
    model_test: float | None = None  # the checkpoint's weights on the test text (None without one)

    def to_json(self) -> dict[str, Any]:
        best = None
        if self.best_held_out is not None:
            best = {"epoch": self.best_held_out[0], "held_out": self.best_held_out[1]}
        # Scored on the held-out text (the figures), fitted on the training text.
        judged = self.verdict()
        return {
            **self.table.to_json(),
            "checkpoint": self.label,
            "model_best": best,
            "source": "held-out",
            "fitted_on": "training",
            "model_test": self.model_test,  # these weights on the test text; counting's is the table's "test"
            "verdict": judged.line() if judged is not None else None,
        }

    def verdict(self) -> Verdict | None:
        from engine.lab.verdict import verdict

        return verdict(self.table, self.best_held_out[1] if self.best_held_out else None, self.model_test)

    def lines(self) -> list[str]:
        t = self.table
        lines = [
            f"n-gram baselines fitted on the training text of {self.label}, scored on its held-out text "
            "(which chooses n) and its test text",
            f"({t.smoothing}; {t.targets:,} characters predicted, {t.unseen:,} never seen in training left out)",
        ]
        tests = t.test or tuple(math.nan for _ in t.n)
        for n, value, test in zip(t.n, t.held_out, tests, strict=True):
            tested = f"  test {test:>10,.2f}" if t.test else ""
            lines.append(f"  {n}-gram  held-out perplexity {value:>10,.2f}{tested}")
        if self.best_held_out is not None:
            epoch, value = self.best_held_out
            n, best = t.best()
            verdict = "beats" if value < best else "does not beat"
            lines.append(f"  model   best held-out {value:,.2f} at epoch {epoch}: {verdict} the {n}-gram ({best:,.2f})")
        if self.model_test is not None:
            lines.append(f"  model   test {self.model_test:,.2f} at these weights")
        judged = self.verdict()
        if judged is not None:
            lines.append(f"  {judged.line()}")
        return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options of its own."""


def run(args: argparse.Namespace, subject: Subject) -> NgramResult:
    from engine.config import stream_length
    from engine.events import best_held_out
    from engine.lab.ngram import ngram_table

    corpus = subject.corpus
    length = stream_length(subject.config)
    table = ngram_table(subject.vocab, corpus.text, corpus.held_out, length, test_text=corpus.test)
    best = best_held_out(list(subject.history))
    found = (best.epoch, best.val_perplexity) if best is not None and best.val_perplexity is not None else None
    return NgramResult(table, subject.label, found, model_test(subject))


def model_test(subject: Subject) -> float | None:
    """The checkpoint's weights on its run's test text, read as the held-out text is (None without a test text)."""
    import dataclasses

    import torch

    from engine.evaluate import Evaluator

    corpus = subject.corpus
    if len(corpus.test) < 2:
        return None
    device = next(subject.model.parameters()).device
    evaluator = Evaluator(subject.config, dataclasses.replace(corpus, held_out=corpus.test), torch.device(device))
    return evaluator(subject.model).held_out.perplexity


# One line, for `rnn-tui lab --help`.
HELP = (
    "character n-gram baselines (n = 1 to 8, modified Kneser-Ney) on the run's held-out and test text, beside the "
    "model's"
)
