"""What the recurrent layer returns: the book's shape demonstration, for any cell and sizes.

The book runs nn.RNN(vocab_size, 256) on X of shape (num_steps, batch, vocab) and prints
`Y.shape, len(state_new), state_new[0].shape`. This gives the same for any cell and sizes, and adds the
dense layer's output, so the table answers the book's question of what an LSTM returns.

The shapes follow from the sizes by the rules torch's nn.RNN, nn.GRU and nn.LSTM document;
tests/test_model_shapes.py runs the real layers forward and checks every shape and the printed line.
Computing them needs no torch: a forward pass on the meta device imports torch._dynamo (seconds) for its
decompositions, and one on the CPU would spend a book-sized product in a UI worker while a run trains.
"""

from __future__ import annotations

from dataclasses import dataclass


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


def torch_size(shape: tuple[int, ...]) -> str:
    """How torch prints a shape: torch.Size([35, 32, 256])."""
    return f"torch.Size({list(shape)})"


def layer_shapes(
    cell: str, vocab_size: int, hidden: int, layers: int, num_steps: int, batch_size: int, embed: int = 0
) -> ShapeReport:
    """embed: the input embedding's width (--embed, or the hidden size when --tie makes one), 0 for one-hot."""
    outputs = (num_steps, batch_size, hidden)
    h = (layers, batch_size, hidden)
    logits = (num_steps * batch_size, vocab_size)
    if embed:  # the layer reads each character's embedding vector
        meaning = "input (num_steps, batch, embed): embedded characters"
        first = TensorShape("E[x]", (num_steps, batch_size, embed), meaning)
    else:  # as the book: shaped like one-hot inputs
        meaning = "input (num_steps, batch, vocab): one-hot characters"
        first = TensorShape("X", (num_steps, batch_size, vocab_size), meaning)
    tensors = [
        first,
        TensorShape("Y", outputs, "hidden state of the last layer at every time step"),
    ]
    if cell == "lstm":  # the state is the tuple (h, c)
        tensors.append(TensorShape("state[0] = h", h, "hidden state at the last step, every layer"))
        tensors.append(TensorShape("state[1] = c", h, "LSTM memory cell at the last step, every layer"))
        book_line = f"{torch_size(outputs)} 2 {torch_size(h)}"
    else:  # the state is one tensor: len() counts its layers, [0] is the first layer's
        tensors.append(TensorShape("state", h, "hidden state at the last step, every layer"))
        book_line = f"{torch_size(outputs)} {layers} {torch_size(h[1:])}"
    tensors.append(TensorShape("dense(Y)", logits, "output (num_steps·batch, vocab): next-character scores"))
    return ShapeReport(cell, tuple(tensors), book_line)
