"""`rnn-tui lab ngram --checkpoint CKPT`: n-gram baselines on the run's held-out text (engine/lab/ngram.py).

Registered in tui.lab_commands.lab_commands(), which builds its LabCommand (this module does not import it:
no import cycle).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.lab.ngram import NgramTable
    from engine.lab.subject import Subject


@dataclass(frozen=True)
class NgramResult:
    table: NgramTable
    label: str
    best_held_out: tuple[int, float] | None  # the run's best held-out epoch and perplexity

    def to_json(self) -> dict[str, Any]:
        best = None
        if self.best_held_out is not None:
            best = {"epoch": self.best_held_out[0], "held_out": self.best_held_out[1]}
        # Scored on the held-out text (the figures), fitted on the training text.
        return {
            **self.table.to_json(),
            "checkpoint": self.label,
            "model_best": best,
            "source": "held-out",
            "fitted_on": "training",
        }

    def lines(self) -> list[str]:
        t = self.table
        lines = [
            f"n-gram baselines fitted on the training text of {self.label}, scored on its held-out text",
            f"({t.smoothing}; {t.targets:,} characters predicted, {t.unseen:,} never seen in training left out)",
        ]
        for n, value in zip(t.n, t.held_out, strict=True):
            lines.append(f"  {n}-gram  held-out perplexity {value:>10,.2f}")
        if self.best_held_out is not None:
            epoch, value = self.best_held_out
            n, best = t.best()
            verdict = "beats" if value < best else "does not beat"
            lines.append(f"  model   best held-out {value:,.2f} at epoch {epoch}: {verdict} the {n}-gram ({best:,.2f})")
        return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options of its own."""


def run(args: argparse.Namespace, subject: Subject) -> NgramResult:
    from engine.events import best_held_out
    from engine.lab.ngram import ngram_table

    table = ngram_table(subject.vocab, subject.corpus.text, subject.corpus.held_out, subject.config.num_steps)
    best = best_held_out(list(subject.history))
    found = (best.epoch, best.val_perplexity) if best is not None and best.val_perplexity is not None else None
    return NgramResult(table, subject.label, found)


# One line, for `rnn-tui lab --help`.
HELP = "character n-gram baselines (n = 1 to 5, Kneser-Ney) on the run's held-out text, beside the model's best"
