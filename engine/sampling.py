"""Minibatch samplers of the book (§6.3): consecutive and random, yielding time-major index tensors.

Both yield (X, Y) of shape (num_steps, batch_size): time-major, so Y.reshape(-1) lines up with the
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


def batches_per_epoch(sampling: str, num_chars: int, batch_size: int, num_steps: int) -> int:
    count = consecutive_batch_count if sampling == "consecutive" else random_batch_count
    return count(num_chars, batch_size, num_steps)
