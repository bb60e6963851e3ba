"""`rnn-tui lab copies --checkpoint CKPT`: how much of the model's samples is copied from the training text.

Registered in tui.cli.lab.lab_commands(), which builds its LabCommand (this module does not import it:
no import cycle).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.lab.copies import Copies
    from engine.lab.subject import Subject


@dataclass(frozen=True)
class CopiesResult:
    copies: Copies
    label: str

    def to_json(self) -> dict[str, Any]:
        return {**self.copies.to_json(), "checkpoint": self.label, "source": "training"}  # the text copies come from

    def lines(self) -> list[str]:
        from engine.lab.copies import DEFINITION

        c = self.copies
        lines = [
            f"samples of {self.label}, against its {c.train_chars:,} training characters "
            f"(suffix array built in {c.build_seconds:.2f} s); [brackets]: the copies",
            f"what counts: {DEFINITION}",
        ]
        for sample in c.samples:
            marked, at = [], 0
            for start, end in sample.spans:
                marked += [sample.text[at:start], "[", sample.text[start:end], "]"]
                at = end
            marked.append(sample.text[at:])
            lines.append(f" - {''.join(marked)}")
            lines.append(
                f"   longest copy {sample.longest_copy} characters; copied {sample.copied} of {sample.generated} "
                f"generated ({sample.copy_share:.0%})"
            )
        return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prefix", action="append", metavar="TEXT", help="sample from this prefix (repeatable; default: the run's)"
    )
    parser.add_argument("--len", type=int, metavar="N", help="characters to generate (default: the run's)")
    parser.add_argument("--text", metavar="TEXT", help="check this text instead of sampling")


def run(args: argparse.Namespace, subject: Subject) -> CopiesResult:
    from engine.errors import ConfigError
    from engine.generate import check_generation_settings, check_prefix, generate
    from engine.lab.copies import TextIndex, copies

    index = TextIndex(subject.corpus.text)
    if args.text is not None:
        return CopiesResult(copies(index, [("", args.text)]), subject.label)
    config = subject.config
    length = config.pred_len if args.len is None else args.len
    if length < 1:
        raise ConfigError(f"--len must be at least 1, not {length}")
    check_generation_settings(length, None, None)
    prefixes = args.prefix or list(config.prefixes)
    samples = []
    for prefix in prefixes:
        check_prefix(prefix, subject.vocab)
        samples.append((prefix, generate(subject.model, subject.vocab, prefix, length)))  # greedy, as the book
    return CopiesResult(copies(index, samples), subject.label)


# One line, for `rnn-tui lab --help`.
HELP = "the model's samples (greedy) checked against the training text: longest verbatim copy, share copied"
