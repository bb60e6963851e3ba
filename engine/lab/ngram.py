"""Baselines: character n-gram models (n = 1 … 5) fitted on the training text, scored on the held-out text.

The yardstick the book's §6.1 introduces: what counting characters gets, so a recurrent model's held-out perplexity
means something ("224" is worse than counting pairs of characters, 150).

Smoothing: interpolated Kneser–Ney with one discount D = 0.75 (Chen & Goodman's "interpolated KN"). For an n-gram
model, the probability of c after the history h (its last n − 1 characters) is

    P(c | h) = max(N(hc) − D, 0) / N(h·)  +  D · T(h) / N(h·) · P(c | h without its first character)

where N counts the n-grams themselves at the highest order and, at the lower orders, their continuation counts (how
many distinct characters precede them in the text), N(h·) sums N(hc) over c and T(h) counts the c with N(hc) > 0; a
history never seen (N(h·) = 0) hands over to the shorter one whole. The recursion ends, as Kneser–Ney's does, at the
continuation unigram discounted the same way and interpolated with the uniform distribution over the V characters
of the vocabulary: max(N(c) − D, 0) / ΣN + D · T / ΣN / V. The 1-gram model alone is the add-one unigram of plain
counts, (count(c) + 1) / (characters + V): what counting gives (231.6 on the book's split over every held-out
character, 228.6 over the targets the held-out figure counts).

Scored like engine/evaluate.py's held-out figure: the same targets (the held-out text's stretches of num_steps
predictions), a character never seen in training left out as a target without <unk> (counted as <unk> with it),
and a history holding one simply never seen (the model falls back to shorter histories).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.corpus import UNSEEN, Vocab

DISCOUNT = 0.75
ORDERS = (1, 2, 3, 4, 5)
SMOOTHING = "interpolated Kneser-Ney (D = 0.75); the 1-gram is add-one"


class KneserNey:
    """An interpolated Kneser–Ney character model of order n over vocab_size symbols (see the module's docstring)."""

    def __init__(self, indices: Sequence[int], order: int, vocab_size: int, discount: float = DISCOUNT) -> None:
        self.order = order
        self.vocab_size = vocab_size
        self.discount = discount
        text = tuple(indices)
        # counts[m][gram]: raw counts at the highest order, continuation counts below it.
        self.counts: list[dict[tuple[int, ...], int]] = [{} for _ in range(order + 1)]
        raw = Counter(text[i : i + order] for i in range(len(text) - order + 1))
        self.counts[order] = dict(raw)
        for m in range(order - 1, 0, -1):
            preceding: dict[tuple[int, ...], set[int]] = defaultdict(set)
            for i in range(1, len(text) - m + 1):
                preceding[text[i : i + m]].add(text[i - 1])
            self.counts[m] = {gram: len(before) for gram, before in preceding.items()}
        # Per history: N(h·) and T(h), for every order above 1.
        self.totals: list[dict[tuple[int, ...], int]] = [{} for _ in range(order + 1)]
        self.types: list[dict[tuple[int, ...], int]] = [{} for _ in range(order + 1)]
        for m in range(2, order + 1):
            totals: dict[tuple[int, ...], int] = defaultdict(int)
            types: dict[tuple[int, ...], int] = defaultdict(int)
            for gram, count in self.counts[m].items():
                totals[gram[:-1]] += count
                types[gram[:-1]] += 1
            self.totals[m], self.types[m] = dict(totals), dict(types)
        self.unigram_total = sum(self.counts[1].values())

    def probability(self, history: Sequence[int], char: int) -> float:
        """P(char | the last order − 1 characters of history)."""
        context = tuple(history[len(history) - (self.order - 1) :]) if self.order > 1 else ()
        return self._p(context, char, len(context) + 1)

    def _p(self, context: tuple[int, ...], char: int, m: int) -> float:
        if m == 1:
            count = self.counts[1].get((char,), 0)
            if self.order == 1:  # the add-one unigram of plain counts
                return (count + 1) / (self.unigram_total + self.vocab_size)
            # Continuation counts, discounted, interpolated with the uniform distribution over the vocabulary.
            uniform = 1 / self.vocab_size
            total = self.unigram_total
            return max(count - self.discount, 0.0) / total + self.discount * len(self.counts[1]) / total * uniform
        lower = self._p(context[1:], char, m - 1)
        total = self.totals[m].get(context, 0)
        if not total:
            return lower
        count = self.counts[m].get((*context, char), 0)
        return max(count - self.discount, 0.0) / total + self.discount * self.types[m][context] / total * lower


@dataclass(frozen=True)
class NgramTable:
    n: tuple[int, ...]
    held_out: tuple[float, ...]  # perplexity of each n on the held-out text
    targets: int  # characters predicted
    unseen: int  # of them, never seen in training (left out without <unk>)
    smoothing: str = SMOOTHING

    def to_json(self) -> dict[str, Any]:
        return {
            "n": list(self.n),
            "held_out": [value if math.isfinite(value) else None for value in self.held_out],
            "targets": self.targets,
            "unseen": self.unseen,
            "smoothing": self.smoothing,
        }

    def best(self) -> tuple[int, float]:
        """The n with the lowest held-out perplexity, and that perplexity."""
        index = min(range(len(self.n)), key=lambda i: self.held_out[i])
        return self.n[index], self.held_out[index]


def held_out_targets(indices: Sequence[int], length: int) -> int:
    """How many held-out characters engine/evaluate.py predicts: whole stretches of length predictions."""
    length = max(1, min(length, len(indices) - 1))
    return (len(indices) - 1) // length * length


def ngram_table(
    vocab: Vocab, train_text: str, held_out_text: str, length: int, orders: Sequence[int] = ORDERS
) -> NgramTable:
    """Each n-gram model of orders fitted on train_text, its perplexity on held_out_text (as the module says)."""
    train = vocab.encode(train_text)
    held, _ = vocab.encode_unseen(held_out_text)
    count = held_out_targets(held, length) if len(held) > 1 else 0
    unseen_index = UNSEEN if not vocab.has_unk else vocab.char_to_idx["<unk>"]
    unseen = sum(1 for i in range(1, count + 1) if held[i] == unseen_index)
    values = []
    for order in orders:
        model = KneserNey(train, order, len(vocab))
        loss, counted = 0.0, 0
        for i in range(1, count + 1):
            if held[i] == UNSEEN:
                continue
            loss -= math.log(model.probability(held[max(0, i - order + 1) : i], held[i]))
            counted += 1
        values.append(math.exp(loss / counted) if counted else float("nan"))
    return NgramTable(tuple(orders), tuple(values), count, unseen)
