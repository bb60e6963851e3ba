"""Minibatch samplers: the Chinese edition's two (§6.3, consecutive and random) and the English edition's
overlapping windows, yielding time-major index tensors.

All yield (X, Y) of shape (num_steps, batch_size): time-major, so Y.reshape(-1) lines up with the
model's (num_steps·batch, vocab) output rows without the book's transpose.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

Batch = tuple[Tensor, Tensor]


def consecutive_batches(corpus: Tensor, batch_size: int, num_steps: int) -> Iterator[Batch]:
    """The book's data_iter_consecutive: batch_size rows cut from the corpus, walked left to right.

    Batch i+1 continues batch i row by row, so the hidden state can be carried over (and detached).
    """
    row_len = len(corpus) // batch_size
    columns = corpus[: batch_size * row_len].view(batch_size, row_len).t().contiguous()  # (row_len, batch)
    for i in range(consecutive_batch_count(len(corpus), batch_size, num_steps)):
        start = i * num_steps
        yield columns[start : start + num_steps], columns[start + 1 : start + num_steps + 1]


def consecutive_batch_count(num_chars: int, batch_size: int, num_steps: int) -> int:
    return (num_chars // batch_size - 1) // num_steps


def random_batches(corpus: Tensor, batch_size: int, num_steps: int, generator: torch.Generator) -> Iterator[Batch]:
    """The book's data_iter_random: shuffled examples of num_steps characters; batches are unrelated."""
    num_examples = (len(corpus) - 1) // num_steps
    order = torch.randperm(num_examples, generator=generator).to(corpus.device)
    offsets = torch.arange(num_steps, device=corpus.device)
    for i in range(random_batch_count(len(corpus), batch_size, num_steps)):
        starts = order[i * batch_size : (i + 1) * batch_size] * num_steps
        positions = starts[None, :] + offsets[:, None]  # (num_steps, batch)
        yield corpus[positions], corpus[positions + 1]


def random_batch_count(num_chars: int, batch_size: int, num_steps: int) -> int:
    return ((num_chars - 1) // num_steps) // batch_size


def window_batches(corpus: Tensor, batch_size: int, num_steps: int, generator: torch.Generator) -> Iterator[Batch]:
    """The English edition's TimeMachine loader: every window of num_steps + 1 characters, at every start (stride 1,
    overlapping), shuffled each epoch; the last batch holds the remainder, as its DataLoader keeps it. Batches are
    unrelated: the state is not carried."""
    num_examples = len(corpus) - num_steps
    order = torch.randperm(num_examples, generator=generator).to(corpus.device)
    windows = corpus.unfold(0, num_steps + 1, 1)  # (num_examples, num_steps + 1), a view: one gather per batch
    for i in range(window_batch_count(len(corpus), batch_size, num_steps)):
        chosen = windows.index_select(0, order[i * batch_size : (i + 1) * batch_size]).t()  # (num_steps + 1, batch)
        yield chosen[:-1], chosen[1:]


def window_batch_count(num_chars: int, batch_size: int, num_steps: int) -> int:
    return max(0, -(-(num_chars - num_steps) // batch_size))


def carries_state(sampling: str) -> bool:
    """Whether the sampler's batches continue each other, so the hidden state can be carried (consecutive only)."""
    return sampling == "consecutive"


def batches_per_epoch(sampling: str, num_chars: int, batch_size: int, num_steps: int) -> int:
    count = {"consecutive": consecutive_batch_count, "random": random_batch_count, "windows": window_batch_count}
    return count[sampling](num_chars, batch_size, num_steps)
