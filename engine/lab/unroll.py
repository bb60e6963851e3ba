"""The model's recurrence one step at a time, with torch's autograd: what the lab's gradient views differentiate.

CharRNN trains through hand-written BPTT (engine/kernels.py), which never exposes ∂loss/∂h at a given step nor the
gate values. unroll() recomputes the same layers from the same weights with plain tensor ops, as torch documents
nn.RNN / nn.GRU / nn.LSTM (gate order r, z, n and i, f, g, o), fed one-hot vectors, so autograd can reach every
step's state and input. It is slow (a Python loop over steps); the lab reads short texts.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.data.corpus import UNSEEN, Vocab
from engine.model import CharRNN, cell_step

# Each cell's sigmoid gates, as Karpathy et al. (2015) count their saturation; the tanh candidates are not gates.
GATE_NAMES: dict[str, tuple[str, ...]] = {"rnn": (), "gru": ("reset", "update"), "lstm": ("input", "forget", "output")}


@dataclass
class Unrolled:
    """Every step's values, each (batch, hidden) unless said: hs[layer][t] the state after input t."""

    hs: list[list[Tensor]]
    logits: list[Tensor]  # (batch, vocab) after each input, from the top layer
    gates: dict[str, list[list[Tensor]]] = field(default_factory=dict)  # gate name → [layer][t]; GRU and LSTM
    # An LSTM's cell state as the next step reads it, cs[layer][t] (keep_cells): a node of its own, so the gradient
    # reaching it is the one through c alone (h_t, computed from c_t, has its own in hs).
    cs: list[list[Tensor]] = field(default_factory=list)


def one_hot(vocab: Vocab, texts: list[str], dtype: torch.dtype = torch.float32) -> Tensor:
    """(steps, batch, vocab) one-hot inputs of equally long texts; a character outside the vocabulary is all zeros
    (the step gets only the biases, as held-out evaluation reads it)."""
    size = len(vocab)
    rows = []
    for text in texts:
        indices, _ = vocab.encode_unseen(text)
        rows.append(indices)
    index = torch.tensor(rows, dtype=torch.long).t()  # (steps, batch)
    seen = index != UNSEEN
    hot = F.one_hot(torch.where(seen, index, 0), size).to(dtype)
    return hot * seen.unsqueeze(-1).to(dtype)


def indices(vocab: Vocab, texts: list[str], device: torch.device) -> Tensor:
    """(steps, batch) indices of equally long texts, UNSEEN (-1) for a character outside the vocabulary."""
    return torch.tensor([vocab.encode_unseen(text)[0] for text in texts], dtype=torch.long, device=device).t()


def unroll(
    model: CharRNN,
    inputs: Tensor,
    reset_at: Collection[int] = (),
    keep_gates: bool = False,
    keep_logits: bool = True,
    keep_cells: bool = False,
) -> Unrolled:
    """Read inputs from a zero state; the state is zeroed again before each step in reset_at.

    inputs: one-hot (steps, batch, vocab), which gradients can reach; or indices (steps, batch), UNSEEN for an
    all-zero input, which pick W_ih's columns instead of multiplying by a one-hot matrix (what reading the gates
    every epoch can afford). Differentiable: call under torch.no_grad() when no gradient is wanted. Eval semantics
    (no dropout). keep_logits False leaves out the output layer (logits stays empty); keep_cells keeps an LSTM's c.
    """
    steps, batch = inputs.shape[0], inputs.shape[1]
    hidden, cell = model.hidden, model.cell
    first = model.rnn.get_parameter("weight_ih_l0")
    zeros = first.new_zeros(batch, hidden)
    if inputs.dtype == torch.long:  # W_ih's column per index, a zero column for UNSEEN
        table = torch.cat((model.input_table(), first.new_zeros(1, first.shape[0])))
        projected: Tensor | None = F.embedding(torch.where(inputs == UNSEEN, len(table) - 1, inputs), table)
    else:
        projected = None
    h = [zeros for _ in range(model.layers)]
    c = [zeros for _ in range(model.layers)]
    out = Unrolled([[] for _ in range(model.layers)], [])
    if keep_cells and cell == "lstm":
        out.cs = [[] for _ in range(model.layers)]
    names = GATE_NAMES[cell] if keep_gates else ()
    for name in names:
        out.gates[name] = [[] for _ in range(model.layers)]
    weights = [model.layer_weights(layer) for layer in range(model.layers)]
    for t in range(steps):
        if t in reset_at:
            h = [zeros for _ in range(model.layers)]
            c = [zeros for _ in range(model.layers)]
        x = inputs[t]
        if projected is None and model.embedding is not None:  # one-hot rows through the embedding (--embed)
            x = x @ model.embedding.weight
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
            gi = projected[t] + b_ih if layer == 0 and projected is not None else F.linear(x, w_ih, b_ih)
            gh = F.linear(h[layer], w_hh, b_hh)
            new_h, new_c, values = cell_step(cell, gi, gh, h[layer], c[layer])
            if new_c is not None:
                c[layer] = new_c
                if out.cs:
                    c[layer] = new_c.clone()  # the state carried to the next step, apart from the h it gave
                    out.cs[layer].append(c[layer])
            for name, value in zip(names, values, strict=False):
                out.gates[name][layer].append(value)
            h[layer] = new_h
            out.hs[layer].append(new_h)
            x = new_h
        if keep_logits:
            out.logits.append(model.dense(x))
    return out


def spectral_radius(model: CharRNN) -> list[float] | None:
    """Each layer's largest |eigenvalue| of W_hh, for a plain RNN (the gates' stacked W_hh is not square)."""
    if model.cell != "rnn":
        return None
    radii = []
    for layer in range(model.layers):
        w_hh = model.layer_weights(layer).w_hh.detach().double().cpu()
        radii.append(float(torch.linalg.eigvals(w_hh).abs().max()))
    return radii
