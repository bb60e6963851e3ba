"""What reading the gates after every epoch costs (--metrics' gate_saturation), against the epoch's training time.

The book's settings (hidden 256, the Jay Chou corpus, 1,500 held-out characters), one thread, GRU and LSTM: the
median of 5 epochs' training seconds, and of 5 gate readings as the trainer does them (a quarter of the held-out
stretches) and over the whole held-out text.

    RNN_TUI_CORPUS=/path/jaychou_lyrics.txt.zip python bench/gate_overhead.py
"""

from __future__ import annotations

import os
import statistics
import time
from functools import partial

import torch

from engine.config import TrainConfig
from engine.data.corpus import find_corpus, load_corpus
from engine.events import EpochEnd, Event
from engine.lab.gates import EPOCH_EVERY, gate_saturation
from engine.trainer import Trainer


def record_seconds(seconds: list[float], event: Event) -> None:
    if isinstance(event, EpochEnd):
        seconds.append(event.seconds)


def main() -> None:
    torch.set_num_threads(1)
    path = find_corpus(os.environ.get("RNN_TUI_CORPUS"))
    assert path is not None, "set RNN_TUI_CORPUS to the corpus"
    for cell in ("gru", "lstm"):
        config = TrainConfig(corpus=str(path), cell=cell, epochs=5, seed=0, pred_len=0)
        corpus = load_corpus(path, config.max_chars, config.val_chars)
        epochs: list[float] = []
        trainer = Trainer(config, corpus, listener=partial(record_seconds, epochs), threads=1)
        trainer.run()
        readings = {}
        for every in (EPOCH_EVERY, 1):
            seconds = []
            for _ in range(5):
                started = time.perf_counter()
                gate_saturation(trainer.model, trainer.vocab, corpus.held_out, config.num_steps, every)
                seconds.append(time.perf_counter() - started)
            readings[every] = statistics.median(seconds)
        epoch = statistics.median(epochs)
        print(
            f"{cell}: epoch {epoch:.3f} s; gates after it {readings[EPOCH_EVERY]:.3f} s "
            f"({readings[EPOCH_EVERY] / epoch:.1%}); the whole held-out text {readings[1]:.3f} s "
            f"({readings[1] / epoch:.1%})"
        )


if __name__ == "__main__":
    main()
