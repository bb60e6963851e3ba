"""Gradients through time (§6.6): how much the loss at a window's last step still reaches the state k steps back.

For windows of a text (by default the held-out text cut into consecutive windows of 100 characters), each read from
a zero state: ‖∂ loss at the last step / ∂ h_{T-k}‖ for k = 0…window-1, averaged over the windows. The loss is the
cross-entropy of the character after the window. A vanishing gradient is this curve falling by orders of magnitude
(a plain tanh RNN); an exploding one, rising (a recurrent matrix scaled to spectral radius well above 1). The
derivative is the total one: through later steps, and through the layers above at the same step. An LSTM's state is
the pair (h, c): its curve is the norm of the gradient with respect to both, ‖(∂ loss / ∂ h, ∂ loss / ∂ c)‖, c as the
next step reads it (the path along c is the one an LSTM keeps gradients alive on).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from engine.data.corpus import UNSEEN, Vocab
from engine.errors import ConfigError
from engine.lab.unroll import indices, spectral_radius, unroll
from engine.model import CharRNN, evaluating

DEFAULT_WINDOW = 100
MAX_WINDOWS = 64  # windows read at once (a batch): bounds the time a long text costs


@dataclass(frozen=True)
class GradientsThroughTime:
    cell: str
    window: int
    windows: int  # windows averaged over
    steps_back: tuple[int, ...]  # k = 0 … window - 1
    per_layer: tuple[tuple[float, ...], ...]  # per layer (bottom first), the mean norm at each k
    spectral_radius: tuple[float, ...] | None  # per layer, W_hh's (plain RNN only)

    @property
    def norm(self) -> tuple[float, ...]:
        """The top layer's curve: the state the output layer reads."""
        return self.per_layer[-1]

    def ratio(self, k: int) -> float:
        """norm at k over norm at 0: below 1, vanishing; above, exploding."""
        return self.norm[k] / self.norm[0] if self.norm[0] > 0 else float("nan")

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "cell": self.cell,
            "state": self.state,
            "window": self.window,
            "windows": self.windows,
            "steps_back": list(self.steps_back),
            "norm": list(self.norm),
        }
        if len(self.per_layer) > 1:
            result["per_layer"] = [list(layer) for layer in self.per_layer]
        if self.spectral_radius is not None:
            result["spectral_radius"] = list(self.spectral_radius)
        return result

    @property
    def state(self) -> str:
        """What the gradient is taken with respect to: h, or an LSTM's (h, c)."""
        return "(h, c)" if self.cell == "lstm" else "h"

    def lines(self) -> list[str]:
        lines = [
            f"gradients through time, {self.cell.upper()}: ‖∂ loss at the last step / ∂ {self.state} k steps back‖, "
            f"mean over {self.windows} window{'s' * (self.windows != 1)} of {self.window} characters"
        ]
        if self.spectral_radius is not None:
            radii = ", ".join(f"{r:.2f}" for r in self.spectral_radius)
            how = (
                "below 1: W_hh alone shrinks the gradient at every step back"
                if max(self.spectral_radius) < 1
                else "above 1: W_hh alone would grow the gradient; tanh's slope below 1 is what shrinks it"
            )
            lines.append(f"spectral radius of W_hh: {radii} ({how})")
        header = "   k" + "".join(f"  layer {n + 1:<7}" for n in range(len(self.per_layer)))
        lines.append(header + "  (top layer, log scale)")
        top = self.norm
        floor = min((v for v in top if v > 0), default=1.0)
        ceiling = max(top, default=1.0)
        span = max(1e-12, torch.log10(torch.tensor(ceiling / floor)).item())
        for k in shown_steps(len(self.steps_back)):
            values = "".join(f"  {layer[k]:<13.3e}" for layer in self.per_layer)
            bar = 1 + round(24 * torch.log10(torch.tensor(max(top[k], floor) / floor)).item() / span)
            lines.append(f"{k:>4}{values}  {'█' * bar}")
        far = len(self.steps_back) - 1
        lines.append(f"at {far} steps back the gradient is {self.ratio(far):.3g} × its size at the last step")
        return lines


def shown_steps(count: int) -> list[int]:
    """The k a table lists: the first few, then spaced out to the last."""
    picks = [k for k in (0, 1, 2, 3, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500) if k < count]
    if count - 1 not in picks:
        picks.append(count - 1)
    return picks


def windows_of(text: str, window: int, vocab: Vocab) -> list[str]:
    """Consecutive pieces of window + 1 characters (window read, the last one predicted) whose last character the
    vocabulary holds (an unseen target has no loss)."""
    pieces = [text[start : start + window + 1] for start in range(0, len(text) - window, window + 1)]
    pieces = [p for p in pieces if vocab.encode_unseen(p[-1])[0][0] != UNSEEN]
    return pieces[:MAX_WINDOWS]


def gradients_through_time(
    model: CharRNN, vocab: Vocab, text: str, window: int = DEFAULT_WINDOW
) -> GradientsThroughTime:
    """The mean ‖∂loss_T/∂h_{T-k}‖ per layer over the windows of text; ConfigError when text holds none."""
    if window < 1:
        raise ConfigError(f"«window» must be at least 1, got {window}")
    pieces = windows_of(text, window, vocab)
    if not pieces:
        raise ConfigError(
            f"the text has {len(text):,} characters: a window of {window} needs at least {window + 1}; "
            "give a shorter «window»"
        )
    # In float64: a plain RNN's gradient 100 steps back can fall below float32's range (it would read as 0).
    model = copy.deepcopy(model).double()
    parameter = next(model.parameters())
    inputs = indices(vocab, [p[:-1] for p in pieces], parameter.device)  # W_ih's columns: no one-hot product
    targets = torch.tensor([vocab.encode_unseen(p[-1])[0][0] for p in pieces], device=parameter.device)
    with evaluating(model), torch.enable_grad():
        unrolled = unroll(model, inputs, keep_cells=True)
        # Summed over windows: each window's loss depends on its own row of the batch only.
        loss = F.cross_entropy(unrolled.logits[-1], targets, reduction="sum")
        states = [h for layer in unrolled.hs for h in layer] + [c for layer in unrolled.cs for c in layer]
        # The last step's c reaches no loss: its gradient is zero (None from autograd).
        found = torch.autograd.grad(loss, states, allow_unused=True)
        grads = [torch.zeros_like(s) if g is None else g for s, g in zip(states, found, strict=True)]
    per_layer = []
    cells = len(unrolled.cs) * window  # after the hs: an LSTM's cs, in the same order
    for layer in range(model.layers):
        squared = [g.square().sum(dim=-1) for g in grads[layer * window : (layer + 1) * window]]
        if cells:
            first = model.layers * window + layer * window
            squared = [s + g.square().sum(dim=-1) for s, g in zip(squared, grads[first : first + window], strict=True)]
        # k steps back from the last step: index window - 1 - k.
        per_layer.append(tuple(float(squared[window - 1 - k].sqrt().mean()) for k in range(window)))
    radius = spectral_radius(model)
    return GradientsThroughTime(
        model.cell,
        window,
        len(pieces),
        tuple(range(window)),
        tuple(per_layer),
        tuple(radius) if radius is not None else None,
    )
