"""`rnn-tui lab gates`: a GRU's or LSTM's gates over the held-out text, saturated shares (engine/lab/gates.py)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry (tui.lab_commands) imports this module: no import back at run time
    from engine.lab.subject import Subject
    from tui.lab_commands.result import LabResult

HELP = "GRU/LSTM gates over the held-out text: each gate's share saturated low (< 0.1) and high (> 0.9), per layer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options of its own: the held-out text, in stretches of the run's num_steps


def run(args: argparse.Namespace, subject: Subject) -> LabResult:
    from engine.lab.gates import gate_saturation

    del args
    return gate_saturation(subject.model, subject.vocab, subject.corpus.held_out, subject.config.num_steps)
