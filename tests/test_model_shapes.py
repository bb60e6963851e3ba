from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from engine.model import CharRNN, make_recurrent_layer
from engine.shapes import layer_shapes


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_index_lookup_equals_explicit_one_hot_forward(cell: str) -> None:
    """Selecting W_ih's columns is the book's onehot(x) @ W_ih^T: outputs, state and gradients agree."""
    torch.manual_seed(0)
    model = CharRNN(vocab_size=1027, cell=cell, hidden=64, layers=2)
    inputs = torch.randint(0, 1027, (35, 4))
    state = model.init_state(4)
    state = (state[0].normal_(), state[1].normal_()) if isinstance(state, tuple) else state.normal_()

    ours, our_state = model.recurrent(inputs, state)
    one_hot = F.one_hot(inputs, 1027).float()  # the book's to_onehot, materialised
    theirs, their_state = model.rnn(one_hot, state)
    assert ours.shape == theirs.shape == (35, 4, 64)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    for a, b in zip(
        our_state if cell == "lstm" else [our_state], their_state if cell == "lstm" else [their_state], strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

    ours.sum().backward()
    grad = model.layer_weights(0).w_ih.grad
    assert grad is not None
    our_grad = grad.clone()
    model.zero_grad()
    model.rnn(one_hot, state)[0].sum().backward()
    torch.testing.assert_close(our_grad, model.rnn.weight_ih_l0.grad, rtol=1e-4, atol=1e-5)


def test_forward_gives_the_books_dense_output_shape() -> None:
    model = CharRNN(vocab_size=1027)
    logits, state = model(torch.zeros(35, 32, dtype=torch.long))
    assert logits.shape == (35 * 32, 1027)
    assert state.shape == (1, 32, 256)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 3])
def test_reported_shapes_are_what_the_real_layers_return(cell: str, layers: int) -> None:
    """layer_shapes computes from the sizes; a real forward pass of torch's layer must agree, printed line included."""
    vocab, hidden, steps, batch = 61, 24, 7, 5
    report = layer_shapes(cell, vocab, hidden, layers, steps, batch)
    torch.manual_seed(0)
    layer = make_recurrent_layer(cell, vocab, hidden, layers, 0.0)
    dense = torch.nn.Linear(hidden, vocab)
    inputs = torch.rand(steps, batch, vocab)  # the book's X
    outputs, state = layer(inputs, None)
    logits = dense(outputs.reshape(-1, hidden))
    states = list(state) if isinstance(state, tuple) else [state]
    real = [tuple(inputs.shape), tuple(outputs.shape), *(tuple(s.shape) for s in states), tuple(logits.shape)]
    assert [t.shape for t in report.tensors] == real
    assert report.book_line == f"{outputs.shape} {len(state)} {state[0].shape}"  # the book's print


def test_shapes_print_the_books_line() -> None:
    report = layer_shapes("rnn", 1027, 256, 1, 35, 2)
    assert report.book_line == "torch.Size([35, 2, 256]) 1 torch.Size([2, 256])"
    assert [t.shape for t in report.tensors] == [(35, 2, 1027), (35, 2, 256), (1, 2, 256), (70, 1027)]


def test_lstm_state_is_the_tuple_h_c() -> None:
    report = layer_shapes("lstm", 1027, 256, 2, 35, 2)
    assert report.book_line == "torch.Size([35, 2, 256]) 2 torch.Size([2, 2, 256])"
    names = [t.name for t in report.tensors]
    assert names == ["X", "Y", "state[0] = h", "state[1] = c", "dense(Y)"]
    model = CharRNN(vocab_size=50, cell="lstm", hidden=8, layers=2)
    _, state = model(torch.zeros(5, 3, dtype=torch.long))
    assert isinstance(state, tuple) and [s.shape for s in state] == [(2, 3, 8), (2, 3, 8)]


def test_shapes_command_prints_the_books_line() -> None:
    result = subprocess.run([sys.executable, "-m", "tui.main", "shapes"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "torch.Size([35, 2, 256]) 1 torch.Size([2, 256])"


@pytest.mark.parametrize(("embed", "tie"), [(16, "off"), (0, "on"), (16, "on")])
def test_an_embedded_models_input_is_what_its_layer_reads(embed: int, tie: str) -> None:
    """With --embed (or --tie, whose embedding is as wide as the hidden state) the layer reads embedding vectors,
    not one-hot ones: the Shapes table's first row is their shape, as the real model's layer is built. The preview
    reads the width from engine.config.input_width, the model from embedding_width: the same."""
    from engine.config import TrainConfig, input_width
    from engine.model import model_for

    config = TrainConfig(cell="gru", hidden=24, layers=1, embed=embed, tie=tie, num_steps=7, batch_size=5)
    model = model_for(config, 61)
    assert input_width(config) == model.embed == (embed or 24)
    report = layer_shapes("gru", 61, 24, 1, 7, 5, input_width(config))
    assert report.tensors[0].name == "E[x]"
    assert report.tensors[0].shape == (7, 5, model.rnn.input_size) == (7, 5, embed or 24)
