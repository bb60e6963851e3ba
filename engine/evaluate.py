"""Held-out and fresh-state perplexity: the model read as generation reads it, from a zero state.

The training perplexity of the book is measured on the text the model trains on, with the hidden state carried
across batches (and, in the Chinese edition's v1 code, across epochs). Two figures tell what it hides:

- held-out perplexity: the text that follows the training text, which the model never trains on;
- fresh-state perplexity: the cold start, and only that: the training text itself, each character predicted within
  the first num_steps characters read from a zero state, the state every generation starts from. It is the memory
  horizon's point at context num_steps (engine/lab/horizon.py). It does not say by itself whether a model is caught
  in the carried-state trap (it never has a zero state in training) or merely cold for a few characters: the
  horizon's long-context end does, the training text read in one pass from a zero state, which the trainer adds at
  every sampling epoch (EpochEnd.horizon_perplexity; a `--state epoch` model scores close to its training figure
  there, a carried one far above). A `--state epoch` GRU read 78 here and 1.5 there against 1.2 in training.

Both are measured the same way, forward only (no gradients, the model in eval mode, no random draws, the training
state untouched): the text is cut into consecutive stretches of num_steps characters (the length of a training
sequence), read in parallel, each from a zero state with the state carried along the stretch. That is the English
edition's validation (its windows, without the overlap); for the Chinese edition's run the stretches are as long as
its training batches, but each starts from a zero state (and the cuts fall elsewhere than the consecutive sampler's,
so a model that knows its batches by heart from where they start is caught too). (Longer stretches, e.g. the
consecutive sampler's rows of 312, cost as many sequential steps.) The fresh-state figure reads a quarter as many
stretches as the held-out one, evenly spaced over the training text: the logits of every character read are the
cost (a 1,027-way output), and the fresh-state figure is there to show a gap of 10× or more, which a quarter of
the text shows as well. With the default 1,500 held-out characters the evaluation costs about 8 % of an epoch of
the book's run on one thread (bench/eval_overhead.py; 5,000 plus as many fresh-state characters cost half an epoch).

Characters of the held-out text that never occur in the training text: with a vocabulary that has <unk> (d2l-en)
they are <unk> and count as the book counts them; without one (d2l-zh, the book's 1,027 characters) the model
cannot predict them, so they are left out as targets and read as an all-zero one-hot input (the step gets only the
biases). Their share of the targets is reported with the figure (unseen_share), never dropped silently.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.config import TrainConfig
from engine.corpus import UNK, UNSEEN, Corpus
from engine.model import CharRNN, evaluating

IGNORED = -100  # F.cross_entropy's ignore_index
CHUNK_POSITIONS = 32_768  # positions per forward pass: bounds the logits' memory on a long held-out text
FRESH_SHARE = 4  # the fresh-state figure reads 1/FRESH_SHARE as many stretches as the held-out one


@dataclass(frozen=True)
class Perplexity:
    """exp(mean cross-entropy) over the targets counted: all of them, less the unseen ones without <unk>."""

    perplexity: float
    targets: int  # characters predicted
    unseen: int  # of them, characters never seen in training: left out (no <unk>) or counted as <unk>
    unseen_counted: bool  # True with a <unk> vocabulary

    @property
    def unseen_share(self) -> float:
        return self.unseen / self.targets if self.targets else 0.0


@dataclass(frozen=True)
class Evaluation:
    held_out: Perplexity
    fresh: Perplexity
    seconds: float


def stream_length(config: TrainConfig) -> int:
    """Characters predicted per stretch read from a zero state: num_steps (see the module's docstring)."""
    return config.num_steps


def streams(indices: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """(inputs, targets), each (length, streams): consecutive stretches of length predictions, every character
    after the first a target once. A text shorter than one stream gives one shorter stream."""
    length = max(1, min(length, len(indices) - 1))
    count = (len(indices) - 1) // length
    inputs = indices[: count * length].view(count, length).t()
    targets = indices[1 : count * length + 1].view(count, length).t()
    return inputs.contiguous(), targets.contiguous()


def spread(inputs: Tensor, targets: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """count of the streams, evenly spaced (all of them when there are not more)."""
    total = inputs.shape[1]
    if count >= total:
        return inputs, targets
    chosen = torch.linspace(0, total - 1, count).round().long().unique()
    return inputs[:, chosen].contiguous(), targets[:, chosen].contiguous()


class Evaluator:
    """The held-out text and a fresh-state sample of the training text, laid out once; called after each epoch.

    Both are read in one forward pass, their streams side by side in one batch: half the sequential steps.
    """

    def __init__(self, config: TrainConfig, corpus: Corpus, device: torch.device) -> None:
        vocab = corpus.vocab
        # Which target marks a character never seen in training: UNSEEN without <unk>; with it, <unk> itself (the
        # training text, which the vocabulary is built from, holds none).
        self.unseen_index = vocab.char_to_idx[UNK] if vocab.has_unk else UNSEEN
        self.unseen_counted = vocab.has_unk
        length = stream_length(config)
        held, _ = vocab.encode_unseen(corpus.held_out)
        held_inputs, held_targets = streams(torch.tensor(held, dtype=torch.long), length)
        train_inputs, train_targets = streams(torch.tensor(corpus.indices, dtype=torch.long), length)
        train_inputs, train_targets = spread(train_inputs, train_targets, max(1, held_inputs.shape[1] // FRESH_SHARE))
        self.length = held_inputs.shape[0]
        self.held_streams = held_inputs.shape[1]
        self.fresh_streams = train_inputs.shape[1]
        if train_inputs.shape[0] != self.length:  # a held-out text shorter than one stream: cut the others to fit
            train_inputs, train_targets = train_inputs[: self.length], train_targets[: self.length]
        inputs = torch.cat((held_inputs, train_inputs), 1)
        targets = torch.cat((held_targets, train_targets), 1)
        self.unseen_inputs = bool((inputs == UNSEEN).any())
        self.held_unseen = int((held_targets == self.unseen_index).sum())
        self.counted = (
            held_targets.numel() - (0 if self.unseen_counted else self.held_unseen),
            train_targets.numel(),
        )
        self.inputs = inputs.masked_fill(inputs == UNSEEN, len(vocab)).to(device)  # the all-zero one-hot row
        self.targets = targets.masked_fill(targets == UNSEEN, IGNORED).to(device)

    def __call__(self, model: CharRNN) -> Evaluation:
        """Both perplexities of the model as it is now; its mode and every random generator are left as they were."""
        started = time.perf_counter()
        with evaluating(model), torch.inference_mode():
            held_sum, fresh_sum = self._loss_sums(model)
        held_targets = self.length * self.held_streams
        held_out = Perplexity(
            perplexity_from(held_sum, self.counted[0]), held_targets, self.held_unseen, self.unseen_counted
        )
        fresh = Perplexity(
            perplexity_from(fresh_sum, self.counted[1]), self.length * self.fresh_streams, 0, self.unseen_counted
        )
        return Evaluation(held_out, fresh, time.perf_counter() - started)

    def _loss_sums(self, model: CharRNN) -> tuple[float, float]:
        steps, count = self.inputs.shape
        chunk = max(1, CHUNK_POSITIONS // count)
        state = None
        sums = torch.zeros(count, dtype=torch.float64, device=self.inputs.device)
        for start in range(0, steps, chunk):
            outputs, state = model.recurrent(self.inputs[start : start + chunk], state, self.unseen_inputs)
            logits = model.dense(outputs.reshape(-1, model.hidden))
            targets = self.targets[start : start + chunk]
            losses = F.cross_entropy(logits, targets.reshape(-1), ignore_index=IGNORED, reduction="none")
            sums += losses.view(targets.shape).sum(0, dtype=torch.float64)
        return float(sums[: self.held_streams].sum()), float(sums[self.held_streams :].sum())


def perplexity_from(loss_sum: float, count: int) -> float:
    """exp(mean cross-entropy) of count targets summing loss_sum nats: NaN with none counted, inf past a float."""
    if not count:
        return float("nan")
    try:
        return math.exp(loss_sum / count)
    except OverflowError:
        return float("inf")
