"""The character-level recurrent language model of the book's RNNModel, without one-hot tensors.

The book feeds one-hot vectors to nn.RNN, so the layer's first product is onehot(x) @ W_ih^T: a
(num_steps·batch, vocab) × (vocab, gates·hidden) matrix product that only picks columns of W_ih.
Here the same columns are selected directly (an index lookup), and the recurrence runs over those
projections. The parameters live in a real nn.RNN / nn.GRU / nn.LSTM of input size vocab, so the
weights mean exactly what they mean in the book, and tests compare against that layer fed one-hot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.config import TrainConfig, embedding_width
from engine.kernels import GRURecurrence, LinearCrossEntropy, LSTMRecurrence, SmallLookup, TanhRecurrence
from engine.setting_kinds import SwitchKind

State = Tensor | tuple[Tensor, Tensor]  # (layers, batch, hidden); an LSTM's is (h, c)

RECURRENT_LAYERS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
# A vocabulary at most this large (the English edition's 28 tokens) takes the small-model path: the lookup with the
# biases folded into its few rows (SmallLookup) and tanh through sigmoid. Per-batch overhead is that model's whole
# cost; a larger vocabulary (the Chinese edition's 1,027) keeps the path its perplexities were pinned on.
SMALL_VOCAB = 64


def cell_step(
    cell: str, gi: Tensor, gh: Tensor, h: Tensor, c: Tensor | None = None
) -> tuple[Tensor, Tensor | None, tuple[Tensor, ...]]:
    """One time step of torch's cell, from its two projections gi = W_ih x + b_ih and gh = W_hh h + b_hh (gate order
    r, z, n for the GRU; i, f, g, o for the LSTM), in plain tensor ops autograd can follow: the new h, the new c (an
    LSTM's; else None) and the sigmoid gates' values (GRU r, z; LSTM i, f, o; none for a plain RNN).

    The book's §6.4 loop (--impl scratch) and the lab's unrolled reading (engine/lab/unroll.py) both step with it.
    """
    if cell == "rnn":
        return torch.tanh(gi + gh), None, ()
    if cell == "gru":
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + r * h_n)
        return (1 - z) * candidate + z * h, None, (r, z)
    assert c is not None  # an LSTM's state always has c
    i, f, g, o = (gi + gh).chunk(4, -1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    return o * torch.tanh(c), c, (i, f, o)


def make_recurrent_layer(cell: str, vocab_size: int, hidden: int, layers: int, dropout: float) -> nn.RNNBase:
    """The layer the book builds: nn.RNN(input_size=vocab_size, hidden_size=hidden), or GRU / LSTM.

    vocab_size is the layer's input size: with an embedding (--embed) its width instead.
    """
    layer_class: Any = RECURRENT_LAYERS[cell]  # torch's stubs give RNNBase's (mode, ...) signature, not RNN's
    layer: nn.RNNBase = layer_class(vocab_size, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0)
    return layer


# An embedding's initial range, as AWD-LSTM draws its encoder: small, since tied it also makes the logits.
EMBED_INIT = 0.1


class TiedDense(nn.Module):
    """The output layer with the input embedding's weights (--tie; Press & Wolf 2017): logits = E (P h) + b.

    P projects the hidden state to the embedding's width when the two differ (none when they are equal). weight is
    the (vocab, hidden) matrix this amounts to, so every reader of a dense layer (the fused loss, generation, the
    lab) reads it as nn.Linear's. The embedding is not registered here: its weights are saved once, as the input's.
    """

    def __init__(self, embedding: nn.Embedding, hidden: int) -> None:
        super().__init__()
        vocab, width = embedding.weight.shape
        self._embedding = (embedding,)  # a tuple: not a submodule
        self.projection = nn.Linear(hidden, width, bias=False) if width != hidden else None
        bound = 1 / hidden**0.5  # nn.Linear's bias range
        self.bias = nn.Parameter(torch.empty(vocab).uniform_(-bound, bound))

    @property
    def weight(self) -> Tensor:
        tied = self._embedding[0].weight
        return tied @ self.projection.weight if self.projection is not None else tied

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


class LayerWeights(NamedTuple):
    """One recurrent layer's parameters, as torch names them (weight_ih_l0, …): W_ih, W_hh, b_ih, b_hh."""

    w_ih: Tensor
    w_hh: Tensor
    b_ih: Tensor
    b_hh: Tensor

    def input_bias(self, cell: str) -> Tensor:
        """The bias added to the input's projection. The GRU keeps b_hn inside r * (W_hn h + b_hn), so only RNN and
        LSTM fold both biases in."""
        return self.b_ih if cell == "gru" else self.b_ih + self.b_hh


class CharRNN(nn.Module):
    """The book's RNNModel: a recurrent layer over the characters, then a dense layer to the vocabulary."""

    def __init__(
        self,
        vocab_size: int,
        cell: str = "rnn",
        hidden: int = 256,
        layers: int = 1,
        dropout: float = 0.0,
        impl: str = "fused",
        embed: int = 0,
        tie: bool = False,
        io_dropout: float = 0.0,
        variational: bool = False,
    ):
        super().__init__()
        self.cell = cell
        self.impl = impl  # how loss() computes (engine.config.IMPLS); evaluation and generation always use recurrent()
        self.vocab_size = vocab_size
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout if layers > 1 else 0.0
        self.io_dropout = io_dropout  # on the first layer's input and the last layer's output (--io-dropout)
        self.variational = variational  # one io-dropout mask per sequence, the same at every step
        # --embed N: an embedding of its own width; --tie with --embed 0: one as wide as the hidden state.
        self.embed = embedding_width(embed, hidden, tie)  # 0: the book's one-hot input
        self.rnn = make_recurrent_layer(cell, self.embed or vocab_size, hidden, layers, dropout)
        # recurrent() reads W_ih of the first layer by rows of W_ih^T (one per character). Stored column-major,
        # those rows are contiguous: the lookup is a plain gather and its gradient needs no transpose.
        first = self.rnn.get_parameter("weight_ih_l0")
        first.data = first.data.t().contiguous().t()
        self.dense: nn.Linear | TiedDense = nn.Linear(hidden, vocab_size)
        self.embedding: nn.Embedding | None = None
        if self.embed:  # made after the layers the book makes, so a run without one draws the same weights
            self.embedding = nn.Embedding(vocab_size, self.embed)
            nn.init.uniform_(self.embedding.weight, -EMBED_INIT, EMBED_INIT)
            if tie:
                self.dense = TiedDense(self.embedding, hidden)
        self.small = vocab_size <= SMALL_VOCAB

    def _drop(self, x: Tensor, p: float, variational: bool) -> Tensor:
        """Dropout of x (steps, batch, width) while training: a mask per element, or one per sequence (variational)."""
        if not p or not self.training:
            return x
        if not variational:
            return F.dropout(x, p, training=True)
        mask = x.new_empty(1, x.shape[1], x.shape[2]).bernoulli_(1 - p).div_(1 - p)
        return x * mask

    def _char_mask(self, inputs: Tensor, like: Tensor) -> Tensor:
        """--io-dropout on one-hot input: whole characters dropped (their vector all zeros), scaled as dropout is."""
        p = self.io_dropout
        return like.new_empty(inputs.shape[0], inputs.shape[1], 1).bernoulli_(1 - p).div_(1 - p)

    def input_table(self) -> Tensor:
        """The first layer's W_ih x for every character x, (vocab, gates·hidden): W_ih's columns for one-hot input,
        with an embedding W_ih E."""
        w_ih = self.rnn.get_parameter("weight_ih_l0")
        if self.embedding is None:
            return w_ih.t()
        return self.embedding.weight @ w_ih.t()

    def dense_input(self, inputs: Tensor) -> Tensor:
        """What the book's layer is fed for inputs (steps, batch): one-hot vectors, or the embedding's; with
        --io-dropout while training, dropped. The torch and scratch ways read it."""
        if self.embedding is not None:
            return self._drop(self.embedding(inputs), self.io_dropout, self.variational)
        one_hot = F.one_hot(inputs, self.vocab_size).to(self.dense.weight.dtype)
        if self.io_dropout and self.training:
            one_hot = one_hot * self._char_mask(inputs, one_hot)
        return one_hot

    def layer_weights(self, layer: int) -> LayerWeights:
        """The recurrent layer's parameters of one layer (0 the first), torch's own tensors."""
        rnn = self.rnn
        return LayerWeights(
            getattr(rnn, f"weight_ih_l{layer}"),
            getattr(rnn, f"weight_hh_l{layer}"),
            getattr(rnn, f"bias_ih_l{layer}"),
            getattr(rnn, f"bias_hh_l{layer}"),
        )

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        device = device or self.dense.weight.device
        zeros = torch.zeros(self.layers, batch_size, self.hidden, device=device)
        return (zeros, zeros.clone()) if self.cell == "lstm" else zeros

    def recurrent(
        self, inputs: Tensor, state: State | None = None, unknown_inputs: bool = False
    ) -> tuple[Tensor, State]:
        """The recurrent layer alone: inputs (num_steps, batch) of indices → Y (num_steps, batch, hidden), state.

        Equal to self.rnn(one_hot(inputs), state), computed without the one-hot product. With unknown_inputs,
        index vocab_size stands for a character outside the vocabulary: its one-hot vector is all zeros, so the
        step gets only the biases (held-out evaluation reads text with characters never seen in training).
        """
        batch_size = inputs.shape[1]
        if state is None:
            state = self.init_state(batch_size, inputs.device)
        h_all, c_all = state if isinstance(state, tuple) else (state, None)  # an LSTM's state is (h, c)
        layer_output: Tensor | None = None
        final_h: list[Tensor] = []
        final_c: list[Tensor] = []
        for layer in range(self.layers):
            weights = self.layer_weights(layer)
            w_ih, w_hh, b_hh = weights.w_ih, weights.w_hh, weights.b_hh
            input_bias = weights.input_bias(self.cell)
            if layer_output is None and self.embedding is not None:
                vectors = self.embedding.weight
                if unknown_inputs:  # a character never seen in training: an all-zero vector, as one-hot gives
                    vectors = torch.cat((vectors, vectors.new_zeros(1, vectors.shape[1])))
                embedded = self._drop(F.embedding(inputs, vectors), self.io_dropout, self.variational)
                projected = F.linear(embedded, w_ih, input_bias)
            elif layer_output is None:
                # onehot(x) @ W_ih^T is column x of W_ih: select it, (num_steps, batch, gates*hidden).
                table = w_ih.t()
                if unknown_inputs:
                    table = torch.cat((table, table.new_zeros(1, table.shape[1])))
                if self.io_dropout and self.training:  # whole characters dropped: only the biases reach the step
                    selected = F.embedding(inputs, table)
                    projected = selected * self._char_mask(inputs, selected) + input_bias
                elif self.small:
                    projected = SmallLookup.apply(table + input_bias, inputs)
                else:
                    projected = F.embedding(inputs, table) + input_bias
            else:
                projected = F.linear(layer_output, w_ih, input_bias)  # all time steps in one product
            # Hand-written BPTT (engine.kernels.py): no per-step autograd graph, W_hh's gradient in one product.
            if self.cell == "rnn":
                layer_output = TanhRecurrence.apply(projected, h_all[layer], w_hh, True, self.small)  # projected: ours
            elif self.cell == "gru":
                layer_output = GRURecurrence.apply(projected, h_all[layer], w_hh, b_hh)
            else:
                assert c_all is not None  # an LSTM's state always has c
                layer_output, cells = LSTMRecurrence.apply(projected, h_all[layer], c_all[layer], w_hh)
                final_c.append(cells[-1])
            final_h.append(layer_output[-1])
            if self.dropout and self.training and layer < self.layers - 1:
                layer_output = F.dropout(layer_output, self.dropout, training=True)
        assert layer_output is not None
        h_new = torch.stack(final_h)
        new_state: State = (h_new, torch.stack(final_c)) if self.cell == "lstm" else h_new
        return self._drop(layer_output, self.io_dropout, self.variational), new_state

    def forward(self, inputs: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """inputs (num_steps, batch) → logits (num_steps·batch, vocab), as the book's dense output, and state."""
        outputs, state = self.recurrent(inputs, state)
        return self.dense(outputs.reshape(-1, self.hidden)), state

    def loss(
        self,
        inputs: Tensor,
        targets: Tensor,
        state: State | None = None,
        output_dtype: torch.dtype | None = None,
        keep_fp32: frozenset[str] = frozenset(),
    ) -> tuple[Tensor, State]:
        """Mean cross-entropy of forward(inputs) against targets (num_steps, batch), and the new state.

        Equal to F.cross_entropy(self(inputs, state)[0], targets.reshape(-1)); the training path, with the
        dense layer and the loss fused (engine/kernels.py), so the logits are never materialised row-major.
        output_dtype: the dtype of the dense layer's products (torch.bfloat16 for --precision bf16; None: float32).
        keep_fp32: those of its products kept in float32 even so (engine/kernels.py, LinearCrossEntropy).
        """
        if self.impl != "fused":  # the book's ways, for comparing speeds: autograd all through, float32
            recurrent = self.torch_recurrent if self.impl == "torch" else self.scratch
            outputs, state = recurrent(inputs, state)
            outputs = self._drop(outputs, self.io_dropout, self.variational)
            logits = self.dense(outputs.reshape(-1, self.hidden))
            return F.cross_entropy(logits, targets.reshape(-1)), state
        outputs, state = self.recurrent(inputs, state)
        flat = outputs.reshape(-1, self.hidden)
        weight, bias = self.dense.weight, self.dense.bias
        return LinearCrossEntropy.apply(flat, weight, bias, targets.reshape(-1), output_dtype, keep_fp32), state

    def torch_recurrent(self, inputs: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """--impl torch, the book's §6.5: the recurrent layer fed one-hot vectors, torch's kernels and autograd."""
        if state is None:
            state = self.init_state(inputs.shape[1], inputs.device)
        outputs, new_state = self.rnn(self.dense_input(inputs), state)
        return outputs, new_state

    def scratch(self, inputs: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """--impl scratch, the book's §6.4: one time step at a time in Python, each step's few products recorded by
        autograd, on the same parameters (torch's gate order: r, z, n for the GRU; i, f, g, o for the LSTM)."""
        if state is None:
            state = self.init_state(inputs.shape[1], inputs.device)
        h_all, c_all = state if isinstance(state, tuple) else (state, None)
        layer_input = self.dense_input(inputs)  # (num_steps, batch, vocab), or the embedding's width
        final_h: list[Tensor] = []
        final_c: list[Tensor] = []
        for layer in range(self.layers):
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
            h = h_all[layer]
            c = c_all[layer] if c_all is not None else None
            outputs = []
            for x in layer_input:
                h, c, _ = cell_step(self.cell, x @ w_ih.t() + b_ih, h @ w_hh.t() + b_hh, h, c)
                outputs.append(h)
            final_h.append(h)
            if c is not None:
                final_c.append(c)
            layer_input = torch.stack(outputs)
            if self.dropout and self.training and layer < self.layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        new_state: State = (torch.stack(final_h), torch.stack(final_c)) if self.cell == "lstm" else torch.stack(final_h)
        return layer_input, new_state


class Stepper:
    """Generation's inner loop: one character in, the next character's logits out, for a batch of one.

    Why: a forward() call per character pays for batching machinery it does not need (index tensors,
    stacked states, a (1, vocab) dense output); here each layer is three to eight vector ops
    (addmv: W_hh h with the bias folded in), which is what keeps a 50-character sample in a few ms.
    Same arithmetic as recurrent(); use under torch.inference_mode() or no_grad().
    """

    def __init__(self, model: CharRNN, state: State) -> None:
        self.cell = model.cell
        self.hidden = model.hidden
        self.layers = []
        for layer in range(model.layers):
            weights = model.layer_weights(layer)
            table = model.input_table() if layer == 0 else weights.w_ih.t()
            self.layers.append((weights.w_ih, table, weights.input_bias(model.cell), weights.w_hh, weights.b_hh))
        self.dense_weight, self.dense_bias = model.dense.weight, model.dense.bias
        if isinstance(state, tuple):
            self.h, self.c = list(state[0][:, 0]), list(state[1][:, 0])
        else:
            self.h, self.c = list(state[:, 0]), []

    def __call__(self, index: int) -> Tensor:
        """Feed character `index`; return the logits (vocab,) for the character after it."""
        return torch.addmv(self.dense_bias, self.dense_weight, self.feed(index))

    def feed(self, index: int) -> Tensor:
        """Feed character `index` and return the top layer's new hidden state (no logits)."""
        hidden = self.hidden
        x: Tensor | None = None
        for layer, (w_ih, table, input_bias, w_hh, b_hh) in enumerate(self.layers):
            x = table[index] + input_bias if x is None else torch.addmv(input_bias, w_ih, x)
            h = self.h[layer]
            if self.cell == "rnn":
                h = torch.addmv(x, w_hh, h).tanh_()
            elif self.cell == "gru":
                gh = torch.addmv(b_hh, w_hh, h)
                rz = torch.add(x[: 2 * hidden], gh[: 2 * hidden]).sigmoid_()
                n = torch.addcmul(x[2 * hidden :], rz[:hidden], gh[2 * hidden :]).tanh_()
                h = torch.lerp(n, h, rz[hidden:])
            else:
                gates = torch.addmv(x, w_hh, h)
                gates[: 2 * hidden].sigmoid_()
                gates[2 * hidden : 3 * hidden].tanh_()
                gates[3 * hidden :].sigmoid_()
                c = torch.addcmul(
                    gates[hidden : 2 * hidden] * self.c[layer], gates[:hidden], gates[2 * hidden : 3 * hidden]
                )
                self.c[layer] = c
                h = gates[3 * hidden :] * c.tanh()
            self.h[layer] = x = h
        assert x is not None
        return x


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) for a while, then the mode the model had: a copy being trained stays in training."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def state_to_cpu(state: State) -> State:
    """A detached copy on the CPU, as checkpoints store it."""
    if isinstance(state, tuple):
        return (state[0].detach().cpu(), state[1].detach().cpu())
    return state.detach().cpu()


def detach_state(state: State) -> State:
    """Cut the graph at a batch boundary, so gradients flow only within one batch (the book's detach)."""
    if isinstance(state, tuple):
        return (state[0].detach(), state[1].detach())
    return state.detach()


def model_for(config: TrainConfig, vocab_size: int, impl: str = "fused") -> CharRNN:
    """The model a config describes, for a vocabulary of vocab_size (a trainer's, a checkpoint's)."""
    return CharRNN(
        vocab_size,
        config.cell,
        config.hidden,
        config.layers,
        config.dropout,
        impl=impl,
        embed=config.embed,
        tie=SwitchKind.is_on(config.tie),
        io_dropout=config.io_dropout,
        variational=SwitchKind.is_on(config.variational),
    )
