"""The English edition's concise RNN (d2l.ai, "Concise Implementation of Recurrent Neural Networks", PyTorch),
transcribed in our own words from what its code does (../shared/seed/d2l-en.md): the baseline for --preset d2l-en.

Kept as the book runs it, so it is a fair baseline: its data pipeline (every overlapping window materialised as a
tensor, a TensorDataset, a DataLoader shuffling the training windows each epoch), one-hot inputs to nn.RNN, a
LazyLinear output layer applied to every step, mean cross-entropy, torch.optim.SGD at lr 1, its gradient clipping
(global L2 norm, scaled to 1 when above), and after every epoch the validation windows in eval mode without
gradients. Do not speed anything up here; improvements belong in engine/.

Perplexities are reported as exp(mean cross-entropy over every predicted character of the epoch), the figure the
engine reports (the book's plot averages exp(loss) over batches instead: a hair higher, the same trend).

    python bench/d2l_en_reference.py --epochs 100 --seed 0
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
TIME_MACHINE = ROOT / "engine" / "data" / "corpora" / "timemachine.txt"
BATCH_SIZE, NUM_STEPS, NUM_TRAIN, NUM_VAL = 1024, 32, 10_000, 5_000
NUM_HIDDENS, LR, MAX_EPOCHS, GRADIENT_CLIP_VAL = 32, 1.0, 100, 1.0


class Vocab:
    """The book's Vocab: '<unk>' plus every token, sorted; an unknown token maps to '<unk>'."""

    def __init__(self, tokens: list[str]) -> None:
        self.token_freqs = sorted(Counter(tokens).items(), key=lambda x: x[1], reverse=True)
        self.idx_to_token = sorted({"<unk>", *(token for token, _ in self.token_freqs)})
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, token: str) -> int:
        return self.token_to_idx.get(token, self.token_to_idx["<unk>"])


class TimeMachine:
    """The book's TimeMachine data module: windows X = corpus[i : i + 32], Y = corpus[i + 1 : i + 33]."""

    def __init__(self, path: Path, batch_size: int, num_steps: int, num_train: int, num_val: int) -> None:
        raw_text = path.read_text()
        text = re.sub("[^A-Za-z]+", " ", raw_text).lower()
        tokens = list(text)
        self.vocab = Vocab(tokens)
        corpus = [self.vocab[token] for token in tokens]
        array = torch.tensor([corpus[i : i + num_steps + 1] for i in range(len(corpus) - num_steps)])
        self.X, self.Y = array[:, :-1], array[:, 1:]
        self.batch_size, self.num_train, self.num_val = batch_size, num_train, num_val

    def get_dataloader(self, train: bool) -> torch.utils.data.DataLoader:
        idx = slice(0, self.num_train) if train else slice(self.num_train, self.num_train + self.num_val)
        dataset = torch.utils.data.TensorDataset(self.X[idx], self.Y[idx])
        return torch.utils.data.DataLoader(dataset, self.batch_size, shuffle=train)


class RNNLM(nn.Module):
    """The book's RNN (nn.RNN over one-hot vectors) + RNNLM (a LazyLinear to the vocabulary at every step)."""

    def __init__(self, vocab_size: int, num_hiddens: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.RNN(vocab_size, num_hiddens)
        self.linear = nn.LazyLinear(vocab_size)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        embs = F.one_hot(X.T, self.vocab_size).type(torch.float32)  # (num_steps, batch, vocab)
        rnn_outputs, _ = self.rnn(embs)
        return self.linear(rnn_outputs).swapaxes(0, 1)  # (batch, num_steps, vocab)

    def loss(self, Y_hat: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(Y_hat.reshape(-1, Y_hat.shape[-1]), Y.reshape(-1))


def clip_gradients(grad_clip_val: float, model: nn.Module) -> None:
    """The book's Trainer.clip_gradients: the global L2 norm, every gradient scaled when it is above the value."""
    params = [p for p in model.parameters() if p.requires_grad]
    norm = torch.sqrt(sum(torch.sum(p.grad**2) for p in params))
    if norm > grad_clip_val:
        for param in params:
            param.grad[:] *= grad_clip_val / norm


def train(epochs: int = MAX_EPOCHS, seed: int = 0, threads: int | None = None, quiet: bool = False) -> dict:
    """Train as the book's Trainer(max_epochs, gradient_clip_val=1).fit(model, data) does; per-epoch figures."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    data = TimeMachine(TIME_MACHINE, BATCH_SIZE, NUM_STEPS, NUM_TRAIN, NUM_VAL)
    model = RNNLM(len(data.vocab), NUM_HIDDENS)
    model(data.X[:1])  # LazyLinear takes its input size from a first call, as the book's Trainer.prepare_model does
    optim = torch.optim.SGD(model.parameters(), LR)
    train_dataloader, val_dataloader = data.get_dataloader(True), data.get_dataloader(False)
    history = []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        model.train()
        loss_sum, chars = 0.0, 0
        for X, Y in train_dataloader:
            loss = model.loss(model(X), Y)
            optim.zero_grad()
            with torch.no_grad():
                loss.backward()
                clip_gradients(GRADIENT_CLIP_VAL, model)
                optim.step()
            loss_sum += loss.item() * Y.numel()
            chars += Y.numel()
        train_seconds = time.perf_counter() - started
        model.eval()
        val_sum, val_chars = 0.0, 0
        for X, Y in val_dataloader:
            with torch.no_grad():
                val_sum += model.loss(model(X), Y).item() * Y.numel()
                val_chars += Y.numel()
        record = {
            "epoch": epoch,
            "perplexity": math.exp(loss_sum / chars),
            "val_perplexity": math.exp(val_sum / val_chars),
            "seconds": train_seconds,
            "eval_seconds": time.perf_counter() - started - train_seconds,
            "chars": chars,
        }
        history.append(record)
        if not quiet and (epoch % 10 == 0 or epoch == epochs):
            print(
                f"epoch {epoch}, train_ppl {record['perplexity']:.4f}, val_ppl {record['val_perplexity']:.4f}, "
                f"{chars / train_seconds:,.0f} chars/s",
                flush=True,
            )
    return {"history": history, "sample": predict(model, data.vocab, "it has", 20)}


def predict(model: RNNLM, vocab: Vocab, prefix: str, num_preds: int) -> str:
    """The book's greedy predict: the prefix warms the state up, then the most likely character, num_preds times."""
    model.eval()
    state, outputs = None, [vocab[prefix[0]]]
    with torch.no_grad():
        for i in range(len(prefix) + num_preds - 1):
            X = torch.tensor([[outputs[-1]]])
            embs = F.one_hot(X.T, model.vocab_size).type(torch.float32)
            rnn_outputs, state = model.rnn(embs, state)
            if i < len(prefix) - 1:
                outputs.append(vocab[prefix[i + 1]])
            else:
                outputs.append(int(model.linear(rnn_outputs).argmax(axis=2).reshape(1)))
    return "".join(vocab.idx_to_token[i] for i in outputs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=MAX_EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    result = train(args.epochs, args.seed, args.threads, quiet=args.json)
    if args.json:
        print(json.dumps(result))
    else:
        print(result["sample"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
