"""`rnn-tui lab saliency`: how much each earlier character moves one prediction (engine/lab/saliency.py)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry (tui.cli.lab) imports this module: no import back at run time
    from engine.lab.subject import Subject
    from tui.cli.lab.result import LabResult

HELP = (
    "saliency of earlier characters for one prediction on the held-out text (or --text); the effective context: "
    "characters back holding 90 percent"
)
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


def default_text(subject: Subject) -> tuple[str, str, str]:
    """(text, source, what was read) without --text: DEFAULT_CONTEXT + 1 characters of the held-out text, predicting
    the last. The first stretch the vocabulary holds whole; else the first whose last character it holds, a character
    never seen in training read as an all-zero input (as held-out evaluation reads it); else, with no held-out text
    to read, the training text's last characters, said so."""
    held_out, vocab, length = subject.corpus.held_out, subject.vocab, DEFAULT_CONTEXT + 1
    start = 0
    while start + length <= len(held_out):
        unknown = [i for i, c in enumerate(held_out[start : start + length]) if c not in vocab]
        if not unknown:
            read = f"read: the held-out text, characters {start}–{start + length - 1}"
            return held_out[start : start + length], "held-out", read
        start += unknown[-1] + 1
    for end in range(min(length, len(held_out)) - 1, len(held_out)):
        if end >= 1 and held_out[end] in vocab:
            first = max(0, end + 1 - length)
            unseen = len(vocab.unknown(held_out[first : end + 1]))
            return (
                held_out[first : end + 1],
                "held-out",
                f"read: the held-out text, characters {first}–{end} ({unseen} kind{'s' * (unseen != 1)} of character "
                "never seen in training among them, read as all-zero inputs)",
            )
    return (
        subject.corpus.text[-length:],
        "training",
        f"read: the training text's last {length} characters (no held-out stretch ends on a character the vocabulary "
        "holds; the held-out text is empty or too short)",
    )


def run(args: argparse.Namespace, subject: Subject) -> LabResult:
    from engine.errors import ConfigError
    from engine.lab.saliency import saliency
    from tui.cli.lab.result import Sourced

    if args.text is not None:
        text, source, read = args.text, "given", "read: the text given (--text)"
    else:
        text, source, read = default_text(subject)
    unknown = subject.vocab.unknown(text) if args.text is not None else []
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:3])
        raise ConfigError(f"--text has characters this checkpoint's vocabulary does not hold: {shown}")
    if len(text) < 2:
        raise ConfigError("--text needs at least 2 characters: one read, one predicted")
    position = args.position if args.position is not None else len(text) - 1
    if not 1 <= position < len(text):
        raise ConfigError(f"--position must be between 1 and {len(text) - 1} for this text, got {position}")
    return Sourced(saliency(subject.model, subject.vocab, text, position, args.reset_at), source, read)
