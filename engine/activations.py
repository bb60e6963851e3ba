"""What each hidden unit does over a text, as in Karpathy et al., "Visualizing and Understanding Recurrent Networks".

read_activations() runs the model over a text from a fresh (zero) state, one character at a time, and
keeps the state after every character: h of every layer, and for an LSTM the cell state c as well. The
steps go through CharRNN.recurrent itself, so the values are the engine's hidden state, not a re-derivation.

suggest_units() points at units worth looking at: those whose activation varies most over the text, and
those most correlated with spaces, which in the lyrics are line breaks (the corpus turns newlines into
spaces): a unit that fires on a space, or one that rises as a line end approaches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.data.corpus import Vocab
from engine.errors import ConfigError
from engine.generate import check_prefix
from engine.lab.gates import gate_values
from engine.model import CharRNN, evaluating

MAX_ACTIVATION_CHARS = 10_000  # (chars × layers × hidden) floats are kept: cap it so a huge text cannot hog memory
# Hidden state; cell state (LSTM only); the gates, recomputed from the weights (engine/lab/gates.py): a GRU's reset and
# update, an LSTM's input, forget and output.
KINDS = ("h", "c", "reset", "update", "input", "forget", "output")
GATE_KINDS = KINDS[2:]


@dataclass(frozen=True)
class Activations:
    """The state after reading each character of text: values[kind] is (len(text), layers, hidden)."""

    text: str
    cell: str
    layers: int
    hidden: int
    values: dict[str, torch.Tensor]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in KINDS if kind in self.values)

    def check(self, kind: str, layer: int, unit: int | None = None) -> None:
        if kind not in self.values:
            choices = " or ".join(self.kinds)
            raise ConfigError(f"{kind!r} is not available for a {self.cell.upper()}; choose {choices}")
        if not 0 <= layer < self.layers:
            raise ConfigError(f"layer must be between 1 and {self.layers}, got {layer + 1}")
        if unit is not None and not 0 <= unit < self.hidden:
            raise ConfigError(f"unit must be between 0 and {self.hidden - 1}, got {unit}")

    def layer(self, kind: str = "h", layer: int = -1) -> torch.Tensor:
        """(len(text), hidden): every unit of one layer after each character. layer -1 is the top one."""
        layer = layer % self.layers if layer < 0 else layer
        self.check(kind, layer)
        return self.values[kind][:, layer, :]

    def unit(self, unit: int, kind: str = "h", layer: int = -1) -> list[float]:
        """One unit's activation after each character of the text."""
        layer = layer % self.layers if layer < 0 else layer
        self.check(kind, layer, unit)
        return self.values[kind][:, layer, unit].tolist()


@dataclass(frozen=True)
class UnitSuggestion:
    unit: int
    reason: str  # "varies most", "fires on a space", "anticipates a space"
    score: float  # the standard deviation, or the correlation (signed)

    def describe(self) -> str:
        if self.reason == "varies most":
            return f"unit {self.unit}: varies most (std {self.score:.2f})"
        return f"unit {self.unit}: {self.reason} (r = {self.score:+.2f})"


@torch.inference_mode()
def read_activations(model: CharRNN, vocab: Vocab, text: str) -> Activations:
    """Run model over text from a zero state and keep every layer's state after each character."""
    if len(text) > MAX_ACTIVATION_CHARS:  # first: its own limit, which the prefix's (as long) would name otherwise
        raise ConfigError(
            f"text is {len(text):,} characters; activations are read for at most {MAX_ACTIVATION_CHARS:,}"
        )
    check_prefix(text, vocab)
    with evaluating(model):
        device = model.dense.weight.device
        indices = torch.tensor(vocab.encode(text), device=device)
        state = model.init_state(1, device)
        hs: list[torch.Tensor] = []
        cs: list[torch.Tensor] = []
        for t in range(len(text)):
            # One step at a time: recurrent() returns only the top layer's outputs, but every layer's state.
            _, state = model.recurrent(indices[t : t + 1].view(1, 1), state)
            if isinstance(state, tuple):
                hs.append(state[0][:, 0, :])
                cs.append(state[1][:, 0, :])
            else:
                hs.append(state[:, 0, :])
        values = {"h": torch.stack(hs).float().cpu()}
        if cs:
            values["c"] = torch.stack(cs).float().cpu()
        if model.cell in ("gru", "lstm") and text:
            for name, layers in gate_values(model, vocab, [text]).items():
                values[name] = torch.stack([layer[:, 0, :] for layer in layers], dim=1).float().cpu()
        return Activations(text, model.cell, model.layers, model.hidden, values)


def correlation(series: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each column of series (chars, units) with target (chars,); 0 where either is flat."""
    x = series - series.mean(0)
    y = target.float() - target.float().mean()
    denominator = x.norm(dim=0) * y.norm()
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return torch.where(denominator > 0, (x * y[:, None]).sum(0) / safe, torch.zeros_like(denominator))


def suggest_units(activations: Activations, kind: str = "h", layer: int = -1, count: int = 3) -> list[UnitSuggestion]:
    """The count units that vary most, then the count most correlated with a space at / right after each character.

    "fires on a space": the state after reading a character correlates with that character being a space.
    "anticipates a space": it correlates with the next character being one (a line is about to end).
    A unit already suggested is not repeated; correlations are ranked by their absolute value.
    """
    values = activations.layer(kind, layer)
    if count < 1 or len(activations.text) < 2:
        return []
    is_space = torch.tensor([c == " " for c in activations.text])
    suggestions: list[UnitSuggestion] = []
    taken: set[int] = set()

    def add(scores: torch.Tensor, reason: str, by_magnitude: bool) -> None:
        order = torch.argsort(scores.abs() if by_magnitude else scores, descending=True).tolist()
        added = 0
        for unit in order:
            if added == count:
                break
            if unit in taken or float(scores[unit]) == 0:
                continue
            taken.add(unit)
            suggestions.append(UnitSuggestion(unit, reason, float(scores[unit])))
            added += 1

    add(values.std(0), "varies most", by_magnitude=False)
    if bool(is_space.any()) and not bool(is_space.all()):
        add(correlation(values, is_space), "fires on a space", by_magnitude=True)
        add(correlation(values[:-1], is_space[1:]), "anticipates a space", by_magnitude=True)
    return suggestions


def display_scale(values: list[float]) -> float:
    """The magnitude that maps to full colour: 1 for h (tanh-bounded), the largest |value| when it exceeds 1 (c)."""
    largest = max((abs(v) for v in values), default=0.0)
    return largest if largest > 1 else 1.0
