"""Counting baselines: character n-gram models (n = 1 … 8) fitted on the training text, scored on the held-out text
(which chooses the order) and on the test text (which reports it).

The yardstick the book's §6.1 introduces: what counting characters gets, so a recurrent model's perplexity means
something ("224" is worse than counting 6-grams, 129).

Smoothing: modified Kneser–Ney (Chen & Goodman 1998, "An Empirical Study of Smoothing Techniques for Language
Modeling"; what KenLM's lmplz estimates), interpolated. For an n-gram model, the probability of c after the history
h (its last n − 1 characters) is

    P(c | h) = max(N(hc) − D(N(hc)), 0) / N(h·)  +  γ(h) · P(c | h without its first character),
    γ(h) = (D1 · N1(h·) + D2 · N2(h·) + D3+ · N3+(h·)) / N(h·)

where N counts the n-grams themselves at the highest order and, at the lower orders, their continuation counts (how
many distinct characters precede them in the training text); N(h·) sums N(hc) over c, and Nk(h·) counts the c with
N(hc) = k (N3+: ≥ 3). The discount depends on the count: D(1) = D1, D(2) = D2, D(k ≥ 3) = D3+, estimated per order
from that order's counts of counts n1 … n4: Y = n1 / (n1 + 2 n2), D1 = 1 − 2Y n2/n1, D2 = 2 − 3Y n3/n2,
D3+ = 3 − 4Y n4/n3 (each D_k kept within [0.1, k]: a discount of 0 would leave some histories nothing to hand
down). A history never seen (N(h·) = 0) hands over to the shorter one whole. The recursion ends at the 1-gram of
continuation counts (raw counts for the 1-gram model itself), discounted the same way and interpolated with the
uniform distribution over the V symbols of the vocabulary.

Counting is numpy's: an m-gram is known by its rank among the training text's distinct m-grams, built order by order
as rank(prefix) · V + last character, sorted and counted with np.unique (no Python dict per n-gram); a text is scored
by looking its m-grams up with np.searchsorted.

Scored like engine/evaluate.py's held-out figure: the same targets (the text's stretches of num_steps predictions),
a character never seen in training left out as a target without <unk> (counted as <unk> with it), and a history
holding one simply never seen (the model falls back to shorter histories). The history reaches back over the
stretches' boundaries within the text (counting has no state to reset).

KneserNey below is the single-discount model this module used before (D = 0.75, add-one 1-gram): kept as the
figure modified Kneser–Ney is measured against (tests/test_ngram.py).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.data.corpus import UNK, UNSEEN, Vocab

DISCOUNT = 0.75  # the single discount of KneserNey (today's figure before modified Kneser-Ney)
ORDERS = (1, 2, 3, 4, 5, 6, 7, 8)
SINGLE_ORDERS = (1, 2, 3, 4, 5)
MIN_DISCOUNT = 0.1  # the least discount of any count (discounts' docstring says why)
SMOOTHING = "modified Kneser-Ney (Chen & Goodman: three discounts per order), interpolated down to uniform"
SINGLE_SMOOTHING = "interpolated Kneser-Ney (D = 0.75); the 1-gram is add-one"
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


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


# ----- modified Kneser–Ney, counted in numpy -----


def lookup(keys: Ints, wanted: Ints) -> Ints:
    """The index of each wanted key in the sorted keys, -1 where it is not there (or negative: no key)."""
    if not len(keys):
        return np.full(len(wanted), -1, dtype=np.int64)
    index = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where((keys[index] == wanted) & (wanted >= 0), index, -1).astype(np.int64)


class NgramCounts:
    """The training text's m-grams for m = 1 … max_order: their sorted keys, raw and continuation counts.

    An m-gram's key is rank(its first m − 1 characters among the (m−1)-grams) · V + its last character (the 1-gram's
    is the character), so keys stay below (text length) · V at every order; its rank is its index in keys[m].
    """

    def __init__(self, indices: Sequence[int] | Ints, max_order: int, vocab_size: int) -> None:
        text = np.asarray(indices, dtype=np.int64)
        self.vocab_size, self.max_order = vocab_size, max_order
        empty = np.zeros(0, dtype=np.int64)
        self.keys: list[Ints] = [empty]
        self.raw: list[Floats] = [np.zeros(0)]  # raw counts of each distinct m-gram
        self.continuation: list[Floats] = [np.zeros(0)]  # how many distinct characters precede it
        ranks: list[Ints] = [empty]  # the rank of the m-gram starting at each position
        first: list[Ints] = [empty]  # a position of each distinct m-gram
        for m in range(1, max_order + 1):
            size = max(0, len(text) - m + 1)
            key = text[:size] if m == 1 else ranks[m - 1][:size] * vocab_size + text[m - 1 : m - 1 + size]
            keys, where, rank = np.unique(key, return_index=True, return_inverse=True)
            self.keys.append(keys.astype(np.int64))
            ranks.append(rank.astype(np.int64).reshape(-1))
            first.append(where.astype(np.int64))
            self.raw.append(np.bincount(ranks[m], minlength=len(keys)).astype(np.float64))
        for m in range(1, max_order):
            # Each distinct (m+1)-gram adds one to the continuation count of its last m characters.
            suffix = ranks[m][first[m + 1] + 1]
            self.continuation.append(np.bincount(suffix, minlength=len(self.keys[m])).astype(np.float64))
        self.continuation.append(np.zeros(0))  # the highest order's is never used


def discounts(counts: Floats) -> tuple[float, float, float]:
    """(D1, D2, D3+) from the counts of counts n1 … n4 (Chen & Goodman): D_k = k − (k+1) Y n_{k+1} / n_k with
    Y = n1 / (n1 + 2 n2), each kept within [MIN_DISCOUNT, k]; a ratio whose n_k is 0 counts as 0 (nothing has that
    count). The floor: a discount of 0 (a short text's counts of counts can ask for less) would leave a history whose
    continuations all have that count no mass to hand down, and a character never seen after it probability 0."""
    n1, n2, n3, n4 = (int(np.count_nonzero(counts == k)) for k in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.0
    result = []
    for k, (low, high) in enumerate(((n1, n2), (n2, n3), (n3, n4)), start=1):
        ratio = high / low if low else 0.0
        result.append(min(float(k), max(MIN_DISCOUNT, k - (k + 1) * y * ratio)))
    return result[0], result[1], result[2]


class ModifiedKneserNey:
    """An interpolated modified Kneser–Ney character model of order n over vocab_size symbols (the module says how).

    counts: the training text's NgramCounts up to at least this order, shared between orders (None: counted here).
    """

    def __init__(
        self, indices: Sequence[int] | Ints, order: int, vocab_size: int, counts: NgramCounts | None = None
    ) -> None:
        if counts is None or counts.max_order < order:
            counts = NgramCounts(indices, order, vocab_size)
        self.order, self.vocab_size, self.counts = order, vocab_size, counts
        self.keys = counts.keys[: order + 1]
        # Per order m: the counts this model uses (raw at its own order, continuation below), their discounts, and
        # per history (an (m−1)-gram's rank) N(h·) and γ's numerator D1 N1(h·) + D2 N2(h·) + D3+ N3+(h·).
        self.used: list[Floats] = [np.zeros(0)]
        self.discounts: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)]
        self.totals: list[Floats] = [np.zeros(0)]
        self.backoff: list[Floats] = [np.zeros(0)]
        for m in range(1, order + 1):
            used = counts.raw[m] if m == order else counts.continuation[m]
            d = discounts(used)
            taken = self._discount(used, d)
            self.used.append(used)
            self.discounts.append(d)
            if m == 1:
                self.totals.append(np.array([used.sum()]))
                self.backoff.append(np.array([taken.sum()]))
                continue
            prefix = self.keys[m] // vocab_size
            size = len(self.keys[m - 1])
            self.totals.append(np.bincount(prefix, weights=used, minlength=size).astype(np.float64))
            self.backoff.append(np.bincount(prefix, weights=taken, minlength=size).astype(np.float64))
        # The 1-gram: discounted counts interpolated with the uniform distribution over the vocabulary.
        total, gamma = float(self.totals[1][0]), float(self.backoff[1][0])
        unigram = np.full(vocab_size, 1.0 / vocab_size)
        if total > 0:
            unigram *= gamma / total
            unigram[self.keys[1]] += (
                np.maximum(self.used[1] - self._discount(self.used[1], self.discounts[1]), 0) / total
            )
        self.unigram = unigram

    @staticmethod
    def _discount(counts: Floats, d: tuple[float, float, float]) -> Floats:
        """The discount of each count: D1, D2 or D3+ by its value, 0 for a count of 0."""
        return np.select([counts == 0, counts == 1, counts == 2], [0.0, d[0], d[1]], default=d[2])

    def probabilities(self, text: Sequence[int] | Ints) -> Floats:
        """P(text[t] | the characters before it in text, at most order − 1) for every t (NaN where text[t] is UNSEEN:
        not a character of the vocabulary). An UNSEEN character in a history makes it a history never seen."""
        q = np.asarray(text, dtype=np.int64)
        size, vocab = len(q), self.vocab_size
        valid = (q >= 0) & (q < vocab)
        p = np.full(size, np.nan)
        p[valid] = self.unigram[q[valid]]
        ranks = lookup(self.keys[1], np.where(valid, q, -1))  # of the 1-gram starting at each position
        for m in range(2, self.order + 1):
            starts = size - m + 1
            if starts <= 0:
                break
            history = ranks[:starts]  # the (m−1)-gram before the target at start + m − 1
            last = q[m - 1 :]
            known = (history >= 0) & valid[m - 1 :]
            gram = lookup(self.keys[m], np.where(known, history * vocab + last, -1))
            seen = history >= 0
            total = np.zeros(starts)
            total[seen] = self.totals[m][history[seen]]
            count = np.zeros(starts)
            count[gram >= 0] = self.used[m][gram[gram >= 0]]
            gamma = np.zeros(starts)
            gamma[seen] = self.backoff[m][history[seen]]
            use = known & (total > 0)
            targets = np.arange(m - 1, size)[use]
            taken = self._discount(count[use], self.discounts[m])
            p[targets] = (np.maximum(count[use] - taken, 0) + gamma[use] * p[targets]) / total[use]
            ranks = gram
        return p

    def distribution(self, history: Sequence[int]) -> Floats:
        """P(c | history) for every c of the vocabulary (sums to 1): each c scored after the history, one block each,
        blocks cut apart by an UNSEEN mark (so no block's history reaches into another)."""
        block = len(history) + 2
        texts = np.full((self.vocab_size, block), UNSEEN, dtype=np.int64)
        texts[:, : len(history)] = history
        texts[:, len(history)] = np.arange(self.vocab_size)
        return self.probabilities(texts.reshape(-1))[len(history) :: block]


# ----- the table -----


def targets_of(vocab: Vocab, text: str, length: int) -> tuple[Ints, int, int]:
    """(the text's indices with UNSEEN, how many targets engine/evaluate.py predicts, how many of them are unseen)."""
    indices, _ = vocab.encode_unseen(text)
    encoded = np.asarray(indices, dtype=np.int64)
    count = held_out_targets(indices, length) if len(indices) > 1 else 0
    unseen_index = vocab.char_to_idx[UNK] if vocab.has_unk else UNSEEN
    unseen = int(np.count_nonzero(encoded[1 : count + 1] == unseen_index))
    return encoded, count, unseen


def perplexity_on(probabilities: Floats, encoded: Ints, count: int) -> float:
    """exp(mean −log P) over the targets 1 … count, UNSEEN ones left out (NaN when none is counted)."""
    chosen = probabilities[1 : count + 1][encoded[1 : count + 1] != UNSEEN]
    if not len(chosen):
        return float("nan")
    return math.exp(-float(np.log(chosen).mean()))


@dataclass(frozen=True)
class NgramTable:
    n: tuple[int, ...]
    held_out: tuple[float, ...]  # perplexity of each n on the held-out text: what chooses the order
    targets: int  # characters predicted
    unseen: int  # of them, never seen in training (left out without <unk>)
    smoothing: str = SMOOTHING
    test: tuple[float, ...] = ()  # each n's perplexity on the test text (() without one): reported, never chosen on
    test_targets: int = 0

    def to_json(self) -> dict[str, Any]:
        n, held_out = self.best()
        chosen = self.best_test()
        return {
            "n": list(self.n),
            "held_out": [finite(value) for value in self.held_out],
            "test": [finite(value) for value in self.test] if self.test else None,
            "targets": self.targets,
            "test_targets": self.test_targets,
            "unseen": self.unseen,
            "smoothing": self.smoothing,
            "best": {"n": n, "held_out": finite(held_out), "test": finite(chosen[1]) if chosen else None},
        }

    def best(self) -> tuple[int, float]:
        """The n with the lowest held-out perplexity, and that perplexity: the order is chosen on held-out only."""
        index = min(range(len(self.n)), key=lambda i: math.inf if math.isnan(self.held_out[i]) else self.held_out[i])
        return self.n[index], self.held_out[index]

    def best_test(self) -> tuple[int, float] | None:
        """The held-out-chosen n and its test perplexity (None without a test text)."""
        if not self.test:
            return None
        n = self.best()[0]
        return n, self.test[self.n.index(n)]


def finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def held_out_targets(indices: Sequence[int], length: int) -> int:
    """How many held-out characters engine/evaluate.py predicts: whole stretches of length predictions."""
    length = max(1, min(length, len(indices) - 1))
    return (len(indices) - 1) // length * length


def ngram_table(
    vocab: Vocab,
    train_text: str,
    held_out_text: str,
    length: int,
    orders: Sequence[int] = ORDERS,
    test_text: str = "",
    single: bool = False,
) -> NgramTable:
    """Each n-gram model of orders fitted on train_text, its perplexity on held_out_text and test_text (as the module
    says). single: the single-discount KneserNey (today's figure before modified Kneser–Ney) instead."""
    train = vocab.encode(train_text)
    held, count, unseen = targets_of(vocab, held_out_text, length)
    test, test_count, _ = targets_of(vocab, test_text, length) if test_text else (np.zeros(0, np.int64), 0, 0)
    counts = None if single else NgramCounts(train, max(orders), len(vocab))
    held_values, test_values = [], []
    for order in orders:
        if single:
            single_model = KneserNey(train, order, len(vocab))
            held_values.append(single_perplexity(single_model, held, count))
            if test_text:
                test_values.append(single_perplexity(single_model, test, test_count))
            continue
        model = ModifiedKneserNey(train, order, len(vocab), counts)
        held_values.append(perplexity_on(model.probabilities(held), held, count))
        if test_text:
            test_values.append(perplexity_on(model.probabilities(test), test, test_count))
    smoothing = SINGLE_SMOOTHING if single else SMOOTHING
    return NgramTable(tuple(orders), tuple(held_values), count, unseen, smoothing, tuple(test_values), test_count)


def single_perplexity(model: KneserNey, encoded: Ints, count: int) -> float:
    """The single-discount model's perplexity over targets 1 … count (UNSEEN left out), one character at a time."""
    held = [int(i) for i in encoded]
    loss, counted = 0.0, 0
    for i in range(1, count + 1):
        if held[i] == UNSEEN:
            continue
        loss -= math.log(model.probability(held[max(0, i - model.order + 1) : i], held[i]))
        counted += 1
    return math.exp(loss / counted) if counted else float("nan")
