"""Saliency of earlier characters (Madsen 2019, "Visualizing memorization in RNNs": connectivity).

For one prediction (the character at `position` of a text, predicted from the characters before it), each earlier
character's saliency is ‖∂ log p(that character) / ∂ x_j‖: the gradient of the prediction's log-probability with
respect to character j's one-hot input vector. The effective context is how many characters back, counted from the
prediction, hold 90 % of the summed saliency: a short-memory model's is a few characters, a long one's a word or a
line. The state is read from zero at the text's start, and zeroed again before each position in reset_at: what
comes before a reset cannot reach the prediction, so its saliency is exactly zero.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch

from engine.data.corpus import UNSEEN, Vocab, visible
from engine.errors import ConfigError
from engine.lab.unroll import one_hot, unroll
from engine.model import CharRNN, evaluating

EFFECTIVE_SHARE = 0.9
MAX_SALIENCY_CHARS = 2_000  # one step of autograd graph per character: a bound on the memory a long text takes


@dataclass(frozen=True)
class Saliency:
    text: str  # the context: the characters before the prediction
    target: str  # the character predicted
    probability: float  # the model's probability for it
    saliency: tuple[float, ...]  # one per character of text
    effective_context: int  # characters back that hold EFFECTIVE_SHARE of the summed saliency

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "target": self.target,
            "probability": self.probability,
            "saliency": list(self.saliency),
            "effective_context": self.effective_context,
        }

    def lines(self) -> list[str]:
        lines = [
            f"predicting {visible(self.target)!r} (p = {self.probability:.3g}) after {len(self.text)} characters: "
            f"the last {self.effective_context} hold {EFFECTIVE_SHARE:.0%} of the saliency (the effective context)"
        ]
        shades = " ░▒▓█"
        top = max(self.saliency, default=0.0)
        # The last characters that fit 80 columns; a wide (CJK) character takes two, and so does its shade.
        start, columns = len(self.text), 0
        while start > 0 and columns + char_width(self.text[start - 1]) <= 80:
            start -= 1
            columns += char_width(self.text[start])
        lines.append("".join(visible(c) for c in self.text[start:]))
        lines.append(
            "".join(
                (shades[min(4, round(4 * s / top))] if top > 0 else " ") * char_width(c)
                for c, s in zip(self.text[start:], self.saliency[start:], strict=True)
            )
            + "  ← saliency (█ the most)"
        )
        ranked = sorted(range(len(self.text)), key=lambda j: -self.saliency[j])[:5]
        named = ", ".join(
            f"{visible(self.text[j])!r} {len(self.text) - j} back ({self.saliency[j]:.3g})" for j in ranked
        )
        lines.append(f"most salient: {named}")
        return lines


def char_width(char: str) -> int:
    """Terminal columns a character takes: two for a wide (CJK) one."""
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def effective_context(saliency: list[float], share: float = EFFECTIVE_SHARE) -> int:
    """The fewest characters back (from the end) whose saliency sums to share of the total; 0 when all are zero."""
    total = sum(saliency)
    if total <= 0:
        return 0
    held = 0.0
    for back, value in enumerate(reversed(saliency), start=1):
        held += value
        if held >= share * total:
            return back
    return len(saliency)


def saliency(
    model: CharRNN, vocab: Vocab, text: str, position: int | None = None, reset_at: Collection[int] = ()
) -> Saliency:
    """The saliency of text[:position] for predicting text[position]; position None: the character after the text,
    as the model's most likely one. ConfigError for a position outside the text or an unpredictable target."""
    if position is None:
        context, target_index = text, None
    else:
        if not 1 <= position < len(text):
            raise ConfigError(f"«position» must be between 1 and {len(text) - 1} for this text, got {position}")
        context = text[:position]
        target_index = vocab.encode_unseen(text[position])[0][0]
        if target_index == UNSEEN:
            raise ConfigError(f"the character {text[position]!r} at «position» {position} is not in the vocabulary")
    if not context:
        raise ConfigError("the text is empty: saliency needs at least one character before the prediction")
    if len(context) > MAX_SALIENCY_CHARS:
        # Only the last characters are read: from a zero state, as a reset just before them.
        offset = len(context) - MAX_SALIENCY_CHARS
        context = context[offset:]
        reset_at = [p - offset for p in reset_at if p > offset]
    parameter = next(model.parameters())
    inputs = one_hot(vocab, [context], parameter.dtype).to(parameter.device).requires_grad_(True)
    with evaluating(model), torch.enable_grad():
        unrolled = unroll(model, inputs, reset_at=set(reset_at))
        log_probs = torch.log_softmax(unrolled.logits[-1][0], dim=-1)
        if target_index is None:
            target_index = int(log_probs.argmax())
        (grad,) = torch.autograd.grad(log_probs[target_index], inputs)
    probability = float(log_probs[target_index].detach().exp())
    values = [float(v) for v in grad[:, 0, :].norm(dim=-1)]
    return Saliency(
        context,
        vocab.idx_to_char[target_index],
        probability,
        tuple(values),
        effective_context(values),
    )
