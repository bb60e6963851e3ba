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
so a model that knows its batches by heart from where they start is caught too).

--eval-stretch N reads the held-out and test texts in longer stretches (the fresh-state figure keeps num_steps: it is
the cold start). Counting's history reaches back over the stretches' boundaries (engine/lab/ngram.py), so with
stretches of num_steps a character early in a stretch is predicted from less than counting reads: the first of 64
from nothing at all. Long stretches give the model the context counting has, as word_language_model's evaluation
does (the state carried through the whole text); on the whole Time Machine a 1-layer LSTM read 3 % lower in
stretches of 1,000 than of 64. They cost as many sequential steps as they are long.

The fresh-state figure reads a quarter as many
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

from engine.config import TrainConfig, stream_length
from engine.data.corpus import UNK, UNSEEN, Corpus
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

    When both are read in stretches of the same length (the default: num_steps), they are read in one forward pass,
    their streams side by side in one batch: half the sequential steps. With --eval-stretch the held-out text's
    stretches are longer than the fresh-state ones, and each is read in a pass of its own.
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
        train_inputs, train_targets = streams(torch.tensor(corpus.indices, dtype=torch.long), config.num_steps)
        # A quarter as many stretches as the held-out text has of num_steps (FRESH_SHARE), whatever --eval-stretch is.
        fresh_count = max(1, (len(held) - 1) // config.num_steps // FRESH_SHARE)
        train_inputs, train_targets = spread(train_inputs, train_targets, fresh_count)
        if train_inputs.shape[0] > held_inputs.shape[0]:  # a held-out text shorter than one stream: cut the others
            train_inputs, train_targets = train_inputs[: held_inputs.shape[0]], train_targets[: held_inputs.shape[0]]
        self.held_unseen = int((held_targets == self.unseen_index).sum())
        self.held_targets = held_targets.numel()
        self.fresh_targets = train_targets.numel()
        self.counted = (self.held_targets - (0 if self.unseen_counted else self.held_unseen), self.fresh_targets)
        # Each pass: inputs, targets, how many of its leading streams are held-out ones, whether an input is unseen.
        self.passes: list[tuple[Tensor, Tensor, int, bool]] = []
        if train_inputs.shape[0] == held_inputs.shape[0]:
            self._add_pass(torch.cat((held_inputs, train_inputs), 1), torch.cat((held_targets, train_targets), 1),
                           held_inputs.shape[1], len(vocab), device)  # fmt: skip
        else:
            self._add_pass(held_inputs, held_targets, held_inputs.shape[1], len(vocab), device)
            self._add_pass(train_inputs, train_targets, 0, len(vocab), device)

    def _add_pass(
        self, inputs: Tensor, targets: Tensor, held_streams: int, vocab_size: int, device: torch.device
    ) -> None:
        unseen_inputs = bool((inputs == UNSEEN).any())
        inputs = inputs.masked_fill(inputs == UNSEEN, vocab_size).to(device)  # the all-zero one-hot row
        targets = targets.masked_fill(targets == UNSEEN, IGNORED).to(device)
        self.passes.append((inputs, targets, held_streams, unseen_inputs))

    def __call__(self, model: CharRNN) -> Evaluation:
        """Both perplexities of the model as it is now; its mode and every random generator are left as they were."""
        started = time.perf_counter()
        held_sum, fresh_sum = 0.0, 0.0
        with evaluating(model), torch.inference_mode():
            for inputs, targets, held_streams, unseen_inputs in self.passes:
                held_part, fresh_part = self._loss_sums(model, inputs, targets, held_streams, unseen_inputs)
                held_sum, fresh_sum = held_sum + held_part, fresh_sum + fresh_part
        held_out = Perplexity(
            perplexity_from(held_sum, self.counted[0]), self.held_targets, self.held_unseen, self.unseen_counted
        )
        fresh = Perplexity(perplexity_from(fresh_sum, self.counted[1]), self.fresh_targets, 0, self.unseen_counted)
        return Evaluation(held_out, fresh, time.perf_counter() - started)

    @staticmethod
    def _loss_sums(
        model: CharRNN, inputs: Tensor, targets: Tensor, held_streams: int, unseen_inputs: bool
    ) -> tuple[float, float]:
        """The summed losses of the held-out streams (the first held_streams) and of the others."""
        steps, count = inputs.shape
        chunk = max(1, CHUNK_POSITIONS // count)
        state = None
        sums = torch.zeros(count, dtype=torch.float64, device=inputs.device)
        for start in range(0, steps, chunk):
            outputs, state = model.recurrent(inputs[start : start + chunk], state, unseen_inputs)
            logits = model.dense(outputs.reshape(-1, model.hidden))
            chunk_targets = targets[start : start + chunk]
            losses = F.cross_entropy(logits, chunk_targets.reshape(-1), ignore_index=IGNORED, reduction="none")
            sums += losses.view(chunk_targets.shape).sum(0, dtype=torch.float64)
        return float(sums[:held_streams].sum()), float(sums[held_streams:].sum())


def perplexity_from(loss_sum: float, count: int) -> float:
    """exp(mean cross-entropy) of count targets summing loss_sum nats: NaN with none counted, inf past a float."""
    if not count:
        return float("nan")
    try:
        return math.exp(loss_sum / count)
    except OverflowError:
        return float("inf")
