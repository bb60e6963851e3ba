"""How far back each model's predictions reach: the lab's effective context and gradients through time, measured.

For each checkpoint: the effective context (engine/lab/saliency.py: characters back holding 90 % of the saliency)
of every prediction over the held-out text read in contexts of 100 characters (one prediction every 10 characters,
a target never seen in training skipped), as mean and median; and the gradient through time 10, 35 and 99 steps
back relative to the last step (engine/lab/gradients.py). One thread.

    python bench/lab_memory.py rnn.ckpt lstm.ckpt gru.ckpt
"""

from __future__ import annotations

import statistics
import sys

import torch

from engine.lab.gradients import gradients_through_time
from engine.lab.saliency import saliency
from engine.lab.subject import load_subject

CONTEXT, EVERY = 100, 10


def main(paths: list[str]) -> None:
    torch.set_num_threads(1)
    for path in paths:
        subject = load_subject(path)
        text, vocab = subject.corpus.held_out, subject.vocab
        reaches = []
        for end in range(CONTEXT, len(text), EVERY):
            if text[end] not in vocab:
                continue
            window = text[end - CONTEXT : end + 1]
            reaches.append(saliency(subject.model, vocab, window, CONTEXT).effective_context)
        curve = gradients_through_time(subject.model, vocab, text)
        config = subject.config
        print(
            f"{path}: {config.cell} hidden {config.hidden}, {subject.label}; held-out perplexity "
            f"{subject.history[-1].val_perplexity:.1f}; effective context over {len(reaches)} predictions: mean "
            f"{statistics.mean(reaches):.1f}, median {statistics.median(reaches):g}; gradient k=10 "
            f"{curve.ratio(10):.2g}, k=35 {curve.ratio(35):.2g}, k=99 {curve.ratio(99):.2g} of k=0"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
