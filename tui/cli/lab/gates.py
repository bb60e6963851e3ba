"""`rnn-tui lab gates`: a GRU's or LSTM's gates over the held-out text, saturated shares (engine/lab/gates.py).

It reads the population --metrics' gate_saturation reads after every epoch: the held-out text in stretches of the
run's num_steps, one stretch in EPOCH_EVERY; so its shares are the metrics' own for the same weights.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry (tui.cli.lab) imports this module: no import back at run time
    from engine.lab.subject import Subject
    from tui.cli.lab.result import LabResult

HELP = (
    "GRU/LSTM gates over the held-out text (the stretches --metrics reads): each gate's share saturated low (< 0.1) "
    "and high (> 0.9), per layer"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options of its own: the held-out text, in stretches of the run's num_steps


def run(args: argparse.Namespace, subject: Subject) -> LabResult:
    from engine.lab.gates import EPOCH_EVERY, gate_saturation
    from tui.cli.lab.result import Sourced

    del args
    held_out, steps = subject.corpus.held_out, subject.config.num_steps
    gates = gate_saturation(subject.model, subject.vocab, held_out, steps, EPOCH_EVERY)
    read = (
        f"read: the held-out text ({len(held_out):,} characters) in stretches of {steps}, one in {EPOCH_EVERY}, "
        "each from a zero state: the stretches --metrics' gate_saturation reads after every epoch"
    )
    return Sourced(gates, "held-out", read)
