"""`rnn-tui lab saliency`: how much each earlier character moves one prediction (engine/lab/saliency.py)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry (tui.lab_commands) imports this module: no import back at run time
    from engine.lab.subject import Subject
    from tui.lab_commands.result import LabResult

HELP = "saliency of earlier characters for one prediction; the effective context: characters back holding 90 percent"
DEFAULT_CONTEXT = 100  # without --text: the held-out text's first characters, predicting the one after them


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--text", metavar="TEXT", help=f"the text to read (default: the held-out text's first {DEFAULT_CONTEXT + 1})"
    )
    parser.add_argument(
        "--position",
        type=int,
        metavar="N",
        help="predict the text's character N (0-based) from those before it (default: the last one)",
    )
    parser.add_argument(
        "--reset-at",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="zero the state before character N, as a new stretch of training starts (repeatable)",
    )


def default_text(subject: Subject) -> str:
    """The first DEFAULT_CONTEXT + 1 characters of the held-out text that the vocabulary all holds (the held-out
    text may have characters never seen in training); else the training text's last ones."""
    held_out, vocab, length = subject.corpus.held_out, subject.vocab, DEFAULT_CONTEXT + 1
    start = 0
    while start + length <= len(held_out):
        unknown = [i for i, c in enumerate(held_out[start : start + length]) if c not in vocab]
        if not unknown:
            return held_out[start : start + length]
        start += unknown[-1] + 1
    return subject.corpus.text[-length:]


def run(args: argparse.Namespace, subject: Subject) -> LabResult:
    from engine.errors import ConfigError
    from engine.lab.saliency import saliency

    text = args.text if args.text is not None else default_text(subject)
    unknown = subject.vocab.unknown(text)
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:3])
        raise ConfigError(f"--text has characters this checkpoint's vocabulary does not hold: {shown}")
    if len(text) < 2:
        raise ConfigError("--text needs at least 2 characters: one read, one predicted")
    position = args.position if args.position is not None else len(text) - 1
    if not 1 <= position < len(text):
        raise ConfigError(f"--position must be between 1 and {len(text) - 1} for this text, got {position}")
    return saliency(subject.model, subject.vocab, text, position, args.reset_at)
