"""Memory horizon: perplexity as a function of how much text the model has read since a zero state.

For a context k the text is cut into consecutive stretches of k predictions, each read from a zero state with the
state carried along the stretch: every character after the first is predicted once, by a model that has read at
most k characters of the text (the first of a stretch from one character, the last from k). k runs 1, 2, 4, … up to
the whole text in one pass (one stream). So:

- the left end (k = 1) is a cold start: the next character from the current one alone;
- the right end is the text read the way `--state epoch` training and a long generation read it, from a zero state
  once; a model trained with its state carried across epochs never starts from zero, and this end stays far above
  its training perplexity (the carried-state trap) while a `--state epoch` model's comes close to it;
- the slope between them is how much the model uses what it read further back (its memory).

Unseen characters count as in engine/evaluate.py: without <unk>, a character never seen in training is left out as
a target and read as an all-zero one-hot input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.data.corpus import UNSEEN, Vocab
from engine.evaluate import CHUNK_POSITIONS, IGNORED, perplexity_from
from engine.model import CharRNN, evaluating

RISE_SHARE = 1.5  # the held-out curve's end this many times its lowest point: it rises with context


@dataclass(frozen=True)
class Horizon:
    """Perplexity of each text at each context; context[-1] is the longest (the whole training text, one pass)."""

    context: tuple[int, ...]
    train: tuple[float, ...]
    held_out: tuple[float, ...]  # empty when there is no held-out text
    train_chars: int
    held_out_chars: int

    @property
    def longest(self) -> float:
        """The training text read in one pass from a zero state: the horizon's long-context end."""
        return self.train[-1]

    def held_out_rises(self) -> bool:
        """The held-out curve ends RISE_SHARE or more above its lowest point: more context of new text, worse."""
        finite = [v for v in self.held_out if math.isfinite(v)]
        return len(finite) > 1 and math.isfinite(self.held_out[-1]) and self.held_out[-1] >= RISE_SHARE * min(finite)

    def caption(self) -> str:
        """One line under the curves when the held-out one rises with context (memorisation's signature), else ""."""
        if not self.held_out_rises():
            return ""
        low = min(v for v in self.held_out if math.isfinite(v))
        at = self.context[self.held_out.index(low)]
        return (
            f"held-out rises with context ({low:,.1f} at k = {at:,}, {self.held_out[-1]:,.1f} whole): memorisation, "
            "the longer it reads new text the surer it is of the old"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "context": list(self.context),
            "train": [_number(value) for value in self.train],
            "held_out": [_number(value) for value in self.held_out],
            "train_chars": self.train_chars,
            "held_out_chars": self.held_out_chars,
            "held_out_rises": self.held_out_rises(),
        }


def contexts(predictions: int) -> tuple[int, ...]:
    """1, 2, 4, … below predictions, then predictions itself (the whole text in one stream)."""
    found: list[int] = []
    k = 1
    while k < predictions:
        found.append(k)
        k *= 2
    found.append(max(1, predictions))
    return tuple(found)


def encode(vocab: Vocab, text: str) -> Tensor:
    """Indices of text, UNSEEN for a character outside a vocabulary without <unk> (<unk> with one)."""
    indices, _ = vocab.encode_unseen(text)
    return torch.tensor(indices, dtype=torch.long)


def loss_sum(model: CharRNN, indices: Tensor, context: int) -> tuple[float, int]:
    """Summed cross-entropy (nats) and the number of targets counted, the text read in stretches of context
    predictions, each from a zero state. Every character after the first is a target once, whatever the context:
    the last stretch is padded at its end with ignored targets (the padding comes after everything it could change).
    """
    predictions = len(indices) - 1
    if predictions < 1:
        return 0.0, 0
    context = max(1, min(context, predictions))
    count = -(-predictions // context)
    size = count * context
    vocab_size = model.vocab_size
    inputs = torch.full((size,), vocab_size, dtype=torch.long)  # padding: the all-zero one-hot row
    targets = torch.full((size,), IGNORED, dtype=torch.long)
    inputs[:predictions] = indices[:-1].masked_fill(indices[:-1] == UNSEEN, vocab_size)
    targets[:predictions] = indices[1:].masked_fill(indices[1:] == UNSEEN, IGNORED)
    device = model.dense.weight.device
    inputs = inputs.view(count, context).t().contiguous().to(device)  # (context, streams)
    targets = targets.view(count, context).t().contiguous().to(device)
    counted = int((targets != IGNORED).sum())
    total = 0.0
    group = max(1, CHUNK_POSITIONS // context)  # streams read side by side
    steps = max(1, CHUNK_POSITIONS // min(group, count))  # positions of a stream per forward pass
    with evaluating(model), torch.inference_mode():
        for first in range(0, count, group):
            state = None
            for start in range(0, context, steps):
                chunk = inputs[start : start + steps, first : first + group]
                outputs, state = model.recurrent(chunk, state, True)
                logits = model.dense(outputs.reshape(-1, model.hidden))
                wanted = targets[start : start + steps, first : first + group].reshape(-1)
                losses = F.cross_entropy(logits, wanted, ignore_index=IGNORED, reduction="sum")
                total += float(losses)
    return total, counted


def perplexity(model: CharRNN, indices: Tensor, context: int) -> float:
    total, counted = loss_sum(model, indices, context)
    return perplexity_from(total, counted)


def horizon(model: CharRNN, vocab: Vocab, train_text: str, held_out_text: str = "") -> Horizon:
    """The memory horizon of model on the training text and the held-out text (engine.lab.subject gives both).

    The held-out curve is read at the same contexts, each capped at the held-out text's length (its last points
    repeat the whole held-out text in one pass)."""
    train = encode(vocab, train_text)
    held = encode(vocab, held_out_text) if held_out_text else None
    ks = contexts(len(train) - 1)
    train_curve = tuple(perplexity(model, train, k) for k in ks)
    held_curve: tuple[float, ...] = ()
    if held is not None and len(held) > 1:
        cache: dict[int, float] = {}
        values = []
        for k in ks:
            capped = min(k, len(held) - 1)
            if capped not in cache:
                cache[capped] = perplexity(model, held, capped)
            values.append(cache[capped])
        held_curve = tuple(values)
    return Horizon(ks, train_curve, held_curve, len(train_text), len(held_out_text))


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: null."""
    return value if math.isfinite(value) else None
