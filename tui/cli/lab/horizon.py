"""`rnn-tui lab horizon --checkpoint CKPT`: perplexity by the context read from a zero state (engine/lab/horizon).

Registered in tui.cli.lab.lab_commands(), which builds its LabCommand (this module does not import it:
no import cycle).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.lab.horizon import Horizon
    from engine.lab.subject import Subject


@dataclass(frozen=True)
class HorizonResult:
    horizon: Horizon
    label: str
    train_perplexity: float | None  # the checkpoint's last training figure, for comparison

    def to_json(self) -> dict[str, Any]:
        h = self.horizon.to_json()
        source = {"train": "training", "held_out": "held-out"}  # each curve's text
        return {**h, "checkpoint": self.label, "train_perplexity": self.train_perplexity, "source": source}

    def lines(self) -> list[str]:
        from engine.events import TRAP_RATIO, is_trap

        h = self.horizon
        lines = [
            f"memory horizon of {self.label}: perplexity of text read from a zero state, by context (characters read)",
            f"{'context':>12}  {'training text':>14}  {'held-out':>10}",
        ]
        for i, k in enumerate(h.context):
            held = f"{h.held_out[i]:,.2f}" if h.held_out else "-"
            name = f"{k:,}" if i < len(h.context) - 1 else f"{k:,} (all)"
            lines.append(f"{name:>12}  {h.train[i]:>14,.2f}  {held:>10}")
        if self.train_perplexity is not None:
            ratio = h.longest / self.train_perplexity
            lines.append(
                f"training perplexity {self.train_perplexity:,.2f}; the whole training text from a zero state "
                f"{h.longest:,.2f} ({ratio:,.1f}×): "
                + (
                    f"×{TRAP_RATIO:g} or more, the model leans on a state it never has from a zero state (the "
                    "carried-state trap)"
                    if is_trap(h.longest, self.train_perplexity)
                    else f"under ×{TRAP_RATIO:g}, close: the model does from a zero state what training says"
                )
            )
        if h.caption():
            lines.append(h.caption())
        lines.append(
            f"read: the training text ({h.train_chars:,} characters) and the held-out text ({h.held_out_chars:,})"
        )
        return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options of its own."""


def run(args: argparse.Namespace, subject: Subject) -> HorizonResult:
    from engine.lab.horizon import horizon

    found = horizon(subject.model, subject.vocab, subject.corpus.text, subject.corpus.held_out)
    train = subject.history[-1].perplexity if subject.history else None
    return HorizonResult(found, subject.label, train)


# One line, for `rnn-tui lab --help`.
HELP = (
    "perplexity by context read from a zero state (1, 2, 4, ... characters, up to the whole text), training vs held-out"
)
