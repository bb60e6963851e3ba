"""The book's §6.5 loop (Dive into Deep Learning, zh, PyTorch port), kept as printed.

This is the baseline rnn-tui is measured against, so it deliberately keeps the
book's habits: a `list(set())` vocabulary, one-hot inputs built with `scatter_`,
a `l.item()` host sync every batch, and d2lzh's `grad_clipping` that never clips.
Do not "fix" anything here; improvements belong in `engine/`.

Usable as a module (`train_reference`) and as a script:

    python bench/reference.py --corpus ../shared/data/jaychou_lyrics.txt.zip --epochs 250
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None

# The page's hyper-parameters (§6.5); num_hiddens/num_steps come from §6.4.
NUM_HIDDENS = 256
NUM_STEPS = 35
BATCH_SIZE = 32
LR = 1e-3
CLIPPING_THETA = 1e-2
PRED_PERIOD = 50
PRED_LEN = 50
# The page prints 分開/不分開, but the corpus is Simplified: those would KeyError.
PREFIXES = ["分开", "不分开"]


def load_data_jay_lyrics(
    zip_path: str | Path,
) -> tuple[list[int], dict[str, int], list[str], int]:
    """d2lzh's loader, with the zip path as an argument instead of '../../data/...'."""
    with zipfile.ZipFile(zip_path) as zin, zin.open("jaychou_lyrics.txt") as f:
        corpus_chars = f.read().decode("utf-8")
    corpus_chars = corpus_chars.replace("\n", " ").replace("\r", " ")
    corpus_chars = corpus_chars[0:10000]
    # list(set()): the order depends on PYTHONHASHSEED, so it changes run to run (as in the book).
    idx_to_char = list(set(corpus_chars))
    char_to_idx = {char: i for i, char in enumerate(idx_to_char)}
    vocab_size = len(char_to_idx)
    corpus_indices = [char_to_idx[char] for char in corpus_chars]
    return corpus_indices, char_to_idx, idx_to_char, vocab_size


def data_iter_consecutive(
    corpus_indices: Sequence[int],
    batch_size: int,
    num_steps: int,
    device: torch.device | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Adjacent sampling: batch i+1 continues batch i row by row (so state can carry over)."""
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # The book stores indices as float32 and casts back with .long() later; kept.
    indices_t = torch.tensor(corpus_indices, dtype=torch.float32, device=device)
    data_len = len(indices_t)
    batch_len = data_len // batch_size
    indices = indices_t[0 : batch_size * batch_len].view(batch_size, batch_len)
    epoch_size = (batch_len - 1) // num_steps
    for i in range(epoch_size):
        i = i * num_steps
        X = indices[:, i : i + num_steps]
        Y = indices[:, i + 1 : i + num_steps + 1]
        yield X, Y


def one_hot(x: torch.Tensor, n_class: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(batch,) indices -> (batch, n_class) one-hot, via scatter_ as in d2lzh_pytorch."""
    x = x.long()
    res = torch.zeros(x.shape[0], n_class, dtype=dtype, device=x.device)
    res.scatter_(1, x.view(-1, 1), 1)
    return res


def to_onehot(X: torch.Tensor, n_class: int) -> list[torch.Tensor]:
    """(batch, seq_len) -> list of seq_len tensors of shape (batch, n_class)."""
    return [one_hot(X[:, i], n_class) for i in range(X.shape[1])]


def grad_clipping(params: Any, theta: float, device: torch.device) -> None:
    """d2lzh's clipping, bug included.

    The §6.5 loop passes `model.parameters()`, a generator: the norm loop below
    exhausts it, so the scaling loop iterates over nothing and gradients are
    never clipped. Kept on purpose: the baseline must train as the book does.
    """
    norm = torch.tensor([0.0], device=device)
    for param in params:
        norm += (param.grad.data**2).sum()
    norm = norm.sqrt().item()  # a second host sync per batch, as in the book
    if norm > theta:
        for param in params:  # empty when params was a generator
            param.grad.data *= theta / norm


class RNNModel(nn.Module):
    """The page's model: a torch recurrent layer plus a dense output layer."""

    def __init__(self, rnn_layer: nn.RNNBase, vocab_size: int) -> None:
        super().__init__()
        self.rnn = rnn_layer
        self.hidden_size = rnn_layer.hidden_size * (2 if rnn_layer.bidirectional else 1)
        self.vocab_size = vocab_size
        self.dense = nn.Linear(self.hidden_size, vocab_size)
        self.state: State = None

    def forward(self, inputs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        # inputs: (batch, seq_len) -> list of seq_len one-hot (batch, vocab)
        X = to_onehot(inputs, self.vocab_size)
        Y, self.state = self.rnn(torch.stack(X), state)
        # Y: (num_steps, batch, hidden) -> (num_steps * batch, vocab)
        output = self.dense(Y.view(-1, Y.shape[-1]))
        return output, self.state


def predict_rnn_pytorch(
    prefix: str,
    num_chars: int,
    model: RNNModel,
    vocab_size: int,
    device: torch.device,
    idx_to_char: Sequence[str],
    char_to_idx: dict[str, int],
) -> str:
    """Greedy generation, one character per forward call (the prefix is fed char by char)."""
    state: State = None
    output = [char_to_idx[prefix[0]]]  # prefix plus what is generated
    for t in range(num_chars + len(prefix) - 1):
        X = torch.tensor([output[-1]], device=device).view(1, 1)
        if state is not None:
            if isinstance(state, tuple):  # noqa: SIM108 -- kept as printed; LSTM: (h, c)
                state = (state[0].to(device), state[1].to(device))
            else:
                state = state.to(device)
        (Y, state) = model(X, state)
        if t < len(prefix) - 1:
            output.append(char_to_idx[prefix[t + 1]])
        else:
            output.append(int(Y.argmax(dim=1).item()))
    return "".join([idx_to_char[i] for i in output])


def train_and_predict_rnn_pytorch(
    model: RNNModel,
    num_hiddens: int,
    vocab_size: int,
    device: torch.device,
    corpus_indices: Sequence[int],
    idx_to_char: Sequence[str],
    char_to_idx: dict[str, int],
    num_epochs: int,
    num_steps: int,
    lr: float,
    clipping_theta: float,
    batch_size: int,
    pred_period: int,
    pred_len: int,
    prefixes: Sequence[str],
    *,
    history: list[tuple[float, float]] | None = None,
    quiet: bool = False,
) -> None:
    """The page's loop. Extras (keyword-only) only observe: history gets
    (perplexity, epoch seconds) per epoch; quiet suppresses printing."""
    loss = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.to(device)
    state: State = None
    for epoch in range(num_epochs):
        l_sum, n, start = 0.0, 0, time.time()
        data_iter = data_iter_consecutive(corpus_indices, batch_size, num_steps, device)
        for X, Y in data_iter:
            if state is not None:
                # detach so that gradients only flow within one mini-batch
                if isinstance(state, tuple):  # noqa: SIM108 -- kept as printed; LSTM: (h, c)
                    state = (state[0].detach(), state[1].detach())
                else:
                    state = state.detach()
            # output: (num_steps * batch_size, vocab_size)
            (output, state) = model(X, state)
            # Y is (batch_size, num_steps); transpose then flatten to match the output rows
            y = torch.transpose(Y, 0, 1).contiguous().view(-1)
            l = loss(output, y.long())  # noqa: E741 -- the book's name
            optimizer.zero_grad()
            l.backward()
            # a generator: never clips, see grad_clipping
            grad_clipping(model.parameters(), clipping_theta, device)
            optimizer.step()
            l_sum += l.item() * y.shape[0]  # host sync every batch, as in the book
            n += y.shape[0]
        try:
            perplexity = math.exp(l_sum / n)
        except OverflowError:
            perplexity = float("inf")
        # measured where the book measures it (before sampling)
        elapsed = time.time() - start
        if history is not None:
            history.append((perplexity, elapsed))
        if (epoch + 1) % pred_period == 0 and not quiet:
            print(f"epoch {epoch + 1}, perplexity {perplexity:f}, time {elapsed:.2f} sec")
            for prefix in prefixes:
                print(
                    " -",
                    predict_rnn_pytorch(
                        prefix,
                        pred_len,
                        model,
                        vocab_size,
                        device,
                        idx_to_char,
                        char_to_idx,
                    ),
                )


_CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def train_reference(
    zip_path: str | Path,
    cell: str = "rnn",
    num_epochs: int = 250,
    seed: int | None = None,
    print_every: int = PRED_PERIOD,
    quiet: bool = False,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """Train the book's model on the book's data and report what a benchmark needs.

    Returns a dict with:
      perplexities: per-epoch perplexity; epoch_seconds: per-epoch training time;
      seconds: total training time (sum of epoch times, sampling excluded);
      chars: characters trained = num_batches * batch_size * num_steps * epochs;
      chars_per_second; model, vocab_size, idx_to_char, char_to_idx, device;
      predict(prefix, n) -> str: the book's greedy predictor on the trained model.
    `seed` fixes weights and batching but not the vocabulary order, which follows
    PYTHONHASHSEED (set it too for fully repeatable runs).
    """
    if cell not in _CELLS:
        raise ValueError(f"cell must be one of {sorted(_CELLS)}, not {cell!r}")
    if seed is not None:
        random.seed(seed)
        torch.manual_seed(seed)
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    corpus_indices, char_to_idx, idx_to_char, vocab_size = load_data_jay_lyrics(zip_path)
    rnn_layer = _CELLS[cell](input_size=vocab_size, hidden_size=NUM_HIDDENS)
    model = RNNModel(rnn_layer, vocab_size).to(device)

    history: list[tuple[float, float]] = []
    train_and_predict_rnn_pytorch(
        model,
        NUM_HIDDENS,
        vocab_size,
        device,
        corpus_indices,
        idx_to_char,
        char_to_idx,
        num_epochs,
        NUM_STEPS,
        LR,
        CLIPPING_THETA,
        BATCH_SIZE,
        print_every,
        PRED_LEN,
        PREFIXES,
        history=history,
        quiet=quiet,
    )

    # Same arithmetic as data_iter_consecutive: predicted chars per epoch.
    num_batches = (len(corpus_indices) // BATCH_SIZE - 1) // NUM_STEPS
    chars = num_batches * BATCH_SIZE * NUM_STEPS * num_epochs
    seconds = sum(t for _, t in history)

    def predict(prefix: str, n: int = PRED_LEN) -> str:
        with torch.no_grad():  # timing inference only; the book has no no_grad, results are equal
            return predict_rnn_pytorch(prefix, n, model, vocab_size, device, idx_to_char, char_to_idx)

    return {
        "cell": cell,
        "perplexities": [p for p, _ in history],
        "epoch_seconds": [t for _, t in history],
        "seconds": seconds,
        "chars": chars,
        "chars_per_second": chars / seconds if seconds > 0 else float("inf"),
        "model": model,
        "vocab_size": vocab_size,
        "idx_to_char": idx_to_char,
        "char_to_idx": char_to_idx,
        "device": device,
        "predict": predict,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The book's §6.5 RNN training loop, as printed.")
    parser.add_argument("--corpus", required=True, type=Path, help="path to jaychou_lyrics.txt.zip")
    parser.add_argument("--epochs", type=int, default=250)
    parser.add_argument("--cell", choices=sorted(_CELLS), default="rnn")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--print-every", type=int, default=PRED_PERIOD)
    args = parser.parse_args(argv)

    result = train_reference(
        args.corpus,
        cell=args.cell,
        num_epochs=args.epochs,
        seed=args.seed,
        print_every=args.print_every,
    )
    predict: Callable[[str, int], str] = result["predict"]
    t0 = time.perf_counter()
    predict(PREFIXES[0], PRED_LEN)
    latency = time.perf_counter() - t0
    epochs = len(result["epoch_seconds"])
    print(
        f"# {args.cell}: {epochs} epochs, {result['seconds']:.2f} s training "
        f"({result['seconds'] / max(epochs, 1):.3f} s/epoch, "
        f"{result['chars_per_second']:.0f} chars/s), "
        f"predict('{PREFIXES[0]}', {PRED_LEN}) {latency * 1000:.1f} ms",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
