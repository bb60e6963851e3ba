"""GRU and LSTM gates (§6.7–6.8), recomputed from the weights, and how often each one saturates.

Karpathy, Johnson & Fei-Fei (2015) count, per layer, the share of time a gate is saturated: below 0.1 (closed, "left
out") or above 0.9 (open, "let through"). A forget gate mostly above 0.9 keeps its cell for long; an update gate
(GRU) above 0.9 keeps the old state. The values are read over a text from a zero state with unroll() (torch's
equations, the model's weights), in stretches of num_steps characters as held-out evaluation reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.data.corpus import Vocab
from engine.errors import ConfigError
from engine.lab.unroll import GATE_NAMES, indices, unroll
from engine.model import CharRNN, evaluating

LOW, HIGH = 0.1, 0.9
MAX_GATE_CHARS = 20_000
# One population for "saturated": the held-out text in stretches of num_steps, one stretch in EPOCH_EVERY, evenly
# spaced. --metrics' gate_saturation reads it after every epoch (the whole held-out text would cost ~10 % of an epoch
# of the book's LSTM on one thread, a quarter 3-4 %; measured under load) and `rnn-tui lab gates` reads the same
# stretches, so the two agree for the same weights (issue #29 saw one GRU's update gate 62.6 % low in the metrics
# and 49.6 % in lab gates when lab gates read all of it). F9 shows one unit over its own text, and says so.
EPOCH_EVERY = 4


@dataclass(frozen=True)
class GateShares:
    low: tuple[float, ...]  # per layer, bottom first: the share of (position, unit) values below LOW
    high: tuple[float, ...]  # above HIGH

    def to_json(self) -> dict[str, list[float]]:
        return {"low": list(self.low), "high": list(self.high)}


@dataclass(frozen=True)
class Gates:
    cell: str
    chars: int  # characters read
    gates: dict[str, GateShares]  # gate name → shares, in the cell's order (reset, update / input, forget, output)

    stretches: int = 0  # stretches read (each from a zero state)
    every: int = 1  # one stretch in every: 1, all of the text

    def to_json(self) -> dict[str, Any]:
        shares = {name: s.to_json() for name, s in self.gates.items()}
        return {"cell": self.cell, "chars": self.chars, "stretches": self.stretches, "every": self.every, **shares}

    def population(self) -> str:
        """Which stretches were read: '40 stretches, one in 4'."""
        read = f"{self.stretches:,} stretch{'es' * (self.stretches != 1)}"
        return read + (f", one in {self.every}" if self.every > 1 else "")

    def lines(self) -> list[str]:
        layers = len(next(iter(self.gates.values())).low)
        lines = [
            f"{self.cell.upper()} gates over {self.chars:,} characters ({self.population()}): the share of values "
            f"saturated low (< {LOW:g}, closed) and high (> {HIGH:g}, open)"
        ]
        for layer in range(layers):
            if layers > 1:
                lines.append(f"layer {layer + 1}")
            for name, shares in self.gates.items():
                low, high = shares.low[layer], shares.high[layer]
                middle = max(0.0, 1 - low - high)
                bar = "▁" * round(20 * low) + "·" * round(20 * middle) + "█" * round(20 * high)
                lines.append(f"  {name:<7} low {low:6.1%}  high {high:6.1%}  {bar}")
        lines.append("a bar: ▁ closed · in between █ open")
        return lines


def gate_stretches(text: str, length: int) -> list[str]:
    """text cut into consecutive stretches of length characters (the last, shorter one dropped unless it is all)."""
    length = max(1, length)
    pieces = [text[start : start + length] for start in range(0, len(text) - length + 1, length)]
    return pieces or ([text] if text else [])


def gate_values(model: CharRNN, vocab: Vocab, texts: list[str]) -> dict[str, list[torch.Tensor]]:
    """gate name → per layer (steps, batch, hidden), over equally long texts each read from a zero state."""
    read = indices(vocab, texts, next(model.parameters()).device)
    with evaluating(model), torch.no_grad():
        unrolled = unroll(model, read, keep_gates=True, keep_logits=False)
    return {name: [torch.stack(steps) for steps in layers] for name, layers in unrolled.gates.items()}


def gate_saturation(model: CharRNN, vocab: Vocab, text: str, stretch: int = 35, every: int = 1) -> Gates:
    """Each gate's saturated shares per layer over text (read in stretches of stretch characters, one in every);
    ConfigError for a plain RNN (no gates) or an empty text."""
    if model.cell not in ("gru", "lstm"):
        raise ConfigError(f"a {model.cell.upper()} has no gates: gates are read for a GRU or an LSTM («cell»)")
    text = text[:MAX_GATE_CHARS]
    every = max(1, every)
    pieces = gate_stretches(text, stretch)[::every]
    if not pieces:
        raise ConfigError("the text is empty: no gates to read")
    values = gate_values(model, vocab, pieces)
    shares = {
        name: GateShares(
            tuple(float((layer < LOW).double().mean()) for layer in layers),
            tuple(float((layer > HIGH).double().mean()) for layer in layers),
        )
        for name, layers in values.items()
    }
    ordered = {name: shares[name] for name in GATE_NAMES[model.cell]}
    return Gates(model.cell, sum(len(p) for p in pieces), ordered, len(pieces), every)
