"""The character-level recurrent language model of the book's RNNModel, without one-hot tensors.

The book feeds one-hot vectors to nn.RNN, so the layer's first product is onehot(x) @ W_ih^T: a
(num_steps·batch, vocab) × (vocab, gates·hidden) matrix product that only picks columns of W_ih.
Here the same columns are selected directly (an index lookup), and the recurrence runs over those
projections. The parameters live in a real nn.RNN / nn.GRU / nn.LSTM of input size vocab, so the
weights mean exactly what they mean in the book, and tests compare against that layer fed one-hot.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = Tensor | tuple[Tensor, Tensor]  # (layers, batch, hidden); an LSTM's is (h, c)

RECURRENT_LAYERS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def make_recurrent_layer(cell: str, vocab_size: int, hidden: int, layers: int, dropout: float) -> nn.RNNBase:
    """The layer the book builds: nn.RNN(input_size=vocab_size, hidden_size=hidden), or GRU / LSTM."""
    return RECURRENT_LAYERS[cell](vocab_size, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0)


class CharRNN(nn.Module):
    """The book's RNNModel: a recurrent layer over the characters, then a dense layer to the vocabulary."""

    def __init__(self, vocab_size: int, cell: str = "rnn", hidden: int = 256, layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.cell = cell
        self.vocab_size = vocab_size
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout if layers > 1 else 0.0
        self.rnn = make_recurrent_layer(cell, vocab_size, hidden, layers, dropout)
        self.dense = nn.Linear(hidden, vocab_size)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        device = device or self.dense.weight.device
        zeros = torch.zeros(self.layers, batch_size, self.hidden, device=device)
        return (zeros, zeros.clone()) if self.cell == "lstm" else zeros

    def recurrent(self, inputs: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """The recurrent layer alone: inputs (num_steps, batch) of indices → Y (num_steps, batch, hidden), state.

        Equal to self.rnn(one_hot(inputs), state), computed without the one-hot product.
        """
        num_steps, batch_size = inputs.shape
        if state is None:
            state = self.init_state(batch_size, inputs.device)
        if self.cell == "lstm":
            h_all, c_all = state  # type: ignore[misc]
        else:
            h_all, c_all = state, None  # type: ignore[assignment]
        layer_output: Tensor | None = None
        final_h: list[Tensor] = []
        final_c: list[Tensor] = []
        for layer in range(self.layers):
            w_ih = getattr(self.rnn, f"weight_ih_l{layer}")
            w_hh = getattr(self.rnn, f"weight_hh_l{layer}")
            b_ih = getattr(self.rnn, f"bias_ih_l{layer}")
            b_hh = getattr(self.rnn, f"bias_hh_l{layer}")
            # The GRU keeps b_hn inside r * (W_hn h + b_hn), so only RNN and LSTM fold both biases in.
            input_bias = b_ih if self.cell == "gru" else b_ih + b_hh
            if layer_output is None:
                # onehot(x) @ W_ih^T is column x of W_ih: select it, (num_steps, batch, gates*hidden).
                projected = F.embedding(inputs, w_ih.t()) + input_bias
            else:
                projected = F.linear(layer_output, w_ih, input_bias)  # all time steps in one product
            h = h_all[layer]
            outputs: list[Tensor] = []
            if self.cell == "rnn":
                for t in range(num_steps):
                    h = torch.tanh(torch.addmm(projected[t], h, w_hh.t()))
                    outputs.append(h)
            elif self.cell == "gru":
                for t in range(num_steps):
                    x_r, x_z, x_n = projected[t].chunk(3, 1)
                    h_r, h_z, h_n = torch.addmm(b_hh, h, w_hh.t()).chunk(3, 1)
                    r = torch.sigmoid(x_r + h_r)
                    z = torch.sigmoid(x_z + h_z)
                    n = torch.tanh(x_n + r * h_n)
                    h = n + z * (h - n)
                    outputs.append(h)
            else:
                c = c_all[layer]  # type: ignore[index]
                for t in range(num_steps):
                    i, f, g, o = torch.addmm(projected[t], h, w_hh.t()).chunk(4, 1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    outputs.append(h)
                final_c.append(c)
            final_h.append(h)
            layer_output = torch.stack(outputs)
            if self.dropout and self.training and layer < self.layers - 1:
                layer_output = F.dropout(layer_output, self.dropout, training=True)
        assert layer_output is not None
        h_new = torch.stack(final_h)
        new_state: State = (h_new, torch.stack(final_c)) if self.cell == "lstm" else h_new
        return layer_output, new_state

    def forward(self, inputs: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """inputs (num_steps, batch) → logits (num_steps·batch, vocab), as the book's dense output, and state."""
        outputs, state = self.recurrent(inputs, state)
        return self.dense(outputs.reshape(-1, self.hidden)), state


def detach_state(state: State) -> State:
    """Cut the graph at a batch boundary, so gradients flow only within one batch (the book's detach)."""
    if isinstance(state, tuple):
        return (state[0].detach(), state[1].detach())
    return state.detach()
