"""What the recurrent layer returns, from a real forward pass: the book's shape demonstration.

The book runs nn.RNN(vocab_size, 256) on X of shape (num_steps, batch, vocab) and prints
`Y.shape, len(state_new), state_new[0].shape`. This does the same for any cell and sizes, and adds the
dense layer's output, so the table answers the book's question of what an LSTM returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.model import make_recurrent_layer


@dataclass(frozen=True)
class TensorShape:
    name: str
    shape: tuple[int, ...]
    meaning: str


@dataclass(frozen=True)
class ShapeReport:
    cell: str
    tensors: tuple[TensorShape, ...]
    book_line: str  # what the book's print(Y.shape, len(state_new), state_new[0].shape) prints


@torch.no_grad()
def layer_shapes(cell: str, vocab_size: int, hidden: int, layers: int, num_steps: int, batch_size: int) -> ShapeReport:
    # On the meta device: the same forward pass and shapes, but no memory, no arithmetic, and no draw from torch's
    # global random generator (the app asks while a run trains: a draw would shift that run's dropout masks).
    with torch.device("meta"):  # thread-local: a run training in another thread is not affected
        layer = make_recurrent_layer(cell, vocab_size, hidden, layers, 0.0)
        dense = nn.Linear(hidden, vocab_size)
        inputs = torch.rand(num_steps, batch_size, vocab_size)  # as the book: random, shaped like one-hot inputs
        outputs, state = layer(inputs, None)
        logits = dense(outputs.reshape(-1, outputs.shape[-1]))
    tensors = [
        TensorShape("X", tuple(inputs.shape), "input (num_steps, batch, vocab): one-hot characters"),
        TensorShape("Y", tuple(outputs.shape), "hidden state of the last layer at every time step"),
    ]
    if isinstance(state, tuple):
        tensors.append(TensorShape("state[0] = h", tuple(state[0].shape), "hidden state at the last step, every layer"))
        tensors.append(
            TensorShape("state[1] = c", tuple(state[1].shape), "LSTM memory cell at the last step, every layer")
        )
    else:
        tensors.append(TensorShape("state", tuple(state.shape), "hidden state at the last step, every layer"))
    tensors.append(
        TensorShape("dense(Y)", tuple(logits.shape), "output (num_steps·batch, vocab): next-character scores")
    )
    book_line = f"{outputs.shape} {len(state)} {state[0].shape}"
    return ShapeReport(cell, tuple(tensors), book_line)
