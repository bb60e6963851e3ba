"""`rnn-tui lab timeline --checkpoint CKPT [--json]`: every report's samples of the run, with the settings they were
drawn under and their longest verbatim copy; the checkpoint's own epoch's samples drawn again from its weights."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.lab.subject import Subject
    from tui.cli.lab.result import LabResult

HELP = "every report's samples with their epoch and settings, and how much each copies the lyrics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options of its own: the timeline is the checkpoint's."""


def run(args: argparse.Namespace, subject: Subject) -> LabResult:
    from engine import checkpoint as checkpoints
    from engine.lab.timeline import timeline_view

    loaded = checkpoints.load(args.checkpoint)  # the Subject carries no timeline; the file is read again (small)
    mid_epoch = loaded.progress is not None and loaded.progress.batches > 0
    from tui.cli.lab.result import Sourced

    view = timeline_view(
        tuple(loaded.timeline), subject.corpus.text, subject.model, subject.vocab, loaded.epoch, mid_epoch
    )
    read = f"copies: looked up in the training text ({len(subject.corpus.text):,} characters)"
    return Sourced(view, "training", read)
