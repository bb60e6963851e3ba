"""Copied text: how much of a sample is found verbatim in the training text. The one copy detector: the trainer's
per-epoch figures, the Samples panel's marking, `rnn-tui lab copies`, the sample timeline and the lessons all read it.

A suffix array of the training text (built once per text by prefix doubling, vectorised with numpy: a fraction of a
second for the whole lyrics, seconds for tens of millions of characters) answers, for each position of a sample,
the longest stretch starting there that occurs somewhere in the training text (a binary search among the sorted
suffixes, then the common prefix with the two neighbours of where it would sort).

What counts as copied (one definition, said once in the README and in F1): only GENERATED characters count; the
prefix is the learner's or the preset's, not the model's. A stretch may begin inside the prefix, which then gives it
context: a model that carries on the line its prefix began is copying that line. So:

- a copy: a stretch of the sample found verbatim in the training text, of at least MIN_COPY characters (counting
  the prefix characters it starts with); shorter matches are what any fluent text shares with its corpus (common
  words), eight characters of lyrics in a row is a line;
- longest_copy: the most generated characters in one stretch found verbatim (of any length);
- copied / copy_share: the generated characters inside copies, and their share of the generated characters.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

MIN_COPY = 8  # characters in a row found in the training text that count as copied

# The definition in words, as F1 and `rnn-tui lab copies` say it (the README says the same).
DEFINITION = (
    f"a copy is a stretch of a sample found verbatim in the training text, {MIN_COPY} characters or more; only "
    "generated characters count (the prefix is yours or the preset's, not the model's), but a copy may begin in "
    'the prefix: carrying on the line a prefix began is copying it. "copied 31 of 50": generated characters '
    "inside copies; longest copy: the most generated characters in one verbatim stretch (of any length)"
)


def suffix_array(text: str) -> np.ndarray:
    """The start of each suffix of text, in the order Python sorts strings (by code point)."""
    n = len(text)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    _, rank = np.unique(codes, return_inverse=True)
    rank = rank.astype(np.int64) + 1  # 0 is "past the end", below every character
    step = 1
    while True:
        shifted = np.zeros(n, dtype=np.int64)
        shifted[: n - step] = rank[step:] if step < n else shifted[:0]
        key = rank * (n + 2) + shifted  # ranks are ≤ n: the pair sorts as one number
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        new_rank = np.empty(n, dtype=np.int64)
        new_rank[order] = np.concatenate(([1], 1 + np.cumsum(ordered[1:] != ordered[:-1])))
        rank = new_rank
        if rank.max() == n or step >= n:
            return order
        step *= 2


class TextIndex:
    """The training text and its suffix array: longest verbatim matches of any text in it."""

    def __init__(self, text: str) -> None:
        started = time.perf_counter()
        self.text = text
        self.suffixes = suffix_array(text)
        self.build_seconds = time.perf_counter() - started

    def longest_at(self, query: str) -> int:
        """Length of the longest prefix of query found somewhere in the text."""
        text, suffixes = self.text, self.suffixes
        low, high = 0, len(suffixes)
        width = len(query)
        while low < high:  # the first suffix that sorts at or after query (compared on query's length)
            middle = (low + high) // 2
            start = int(suffixes[middle])
            if text[start : start + width] < query:
                low = middle + 1
            else:
                high = middle
        best = 0
        for neighbour in (low - 1, low):
            if 0 <= neighbour < len(suffixes):
                best = max(best, _common_prefix(text, int(suffixes[neighbour]), query))
        return best

    def matching(self, text: str) -> list[int]:
        """For each position of text, the longest stretch starting there found in the training text."""
        return [self.longest_at(text[i:]) for i in range(len(text))]


@lru_cache(maxsize=2)
def index_for(text: str) -> TextIndex:
    """The index of text, built once: the trainer, the timeline pane and the lessons read the same training text."""
    return TextIndex(text)


@dataclass(frozen=True)
class SampleCopy:
    text: str  # prefix + generated text
    prefix: int  # characters of the prefix
    longest_copy: int  # the most generated characters in one stretch found verbatim
    copied: int  # generated characters inside copies (stretches of ≥ MIN_COPY, prefix characters included)
    generated: int
    spans: tuple[tuple[int, int], ...]  # [start, end) in text of the copies' generated parts, merged
    longest_start: int = 0  # where in text the longest copy's generated part starts (≥ prefix)

    @property
    def copy_share(self) -> float:
        return self.copied / self.generated if self.generated else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prefix": self.text[: self.prefix],
            "longest_copy": self.longest_copy,
            "copy_share": self.copy_share,
            "copied": self.copied,
            "generated": self.generated,
            "spans": [list(span) for span in self.spans],
            "longest_start": self.longest_start,
        }


def sample_copy(index: TextIndex, text: str, prefix: int = 0) -> SampleCopy:
    """What of text (its first prefix characters given, the rest generated) is copied from index's text."""
    prefix = min(prefix, len(text))
    lengths = index.matching(text)
    covered = [False] * len(text)
    longest, longest_start = 0, prefix
    for start, length in enumerate(lengths):
        first = max(start, prefix)  # the stretch's first generated character
        if start + length - first > longest:
            longest, longest_start = start + length - first, first
        if length >= MIN_COPY:
            for position in range(first, start + length):
                covered[position] = True
    spans: list[tuple[int, int]] = []
    for position, inside in enumerate(covered):
        if inside:
            if spans and spans[-1][1] == position:
                spans[-1] = (spans[-1][0], position + 1)
            else:
                spans.append((position, position + 1))
    return SampleCopy(text, prefix, longest, sum(covered), len(text) - prefix, tuple(spans), longest_start)


@dataclass(frozen=True)
class Copies:
    """The copies of a run's samples: the view `rnn-tui lab copies` prints."""

    samples: tuple[SampleCopy, ...]
    build_seconds: float
    train_chars: int

    @property
    def longest(self) -> int:
        return max((sample.longest_copy for sample in self.samples), default=0)

    @property
    def share(self) -> float:
        generated = sum(sample.generated for sample in self.samples)
        return sum(sample.copied for sample in self.samples) / generated if generated else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "samples": [sample.to_json() for sample in self.samples],
            "copy_longest": self.longest,
            "copy_share": self.share,
            "min_copy": MIN_COPY,
            "train_chars": self.train_chars,
            "build_seconds": self.build_seconds,
        }


def copies(index: TextIndex, samples: Sequence[tuple[str, str]]) -> Copies:
    """samples: (prefix, prefix + generated text), as engine.events.Samples holds them."""
    found = tuple(sample_copy(index, text, len(prefix)) for prefix, text in samples)
    return Copies(found, index.build_seconds, len(index.text))


def _common_prefix(text: str, start: int, query: str) -> int:
    limit = min(len(query), len(text) - start)
    length = 0
    while length < limit and text[start + length] == query[length]:
        length += 1
    return length
