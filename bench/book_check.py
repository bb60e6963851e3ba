"""The book's 250-epoch run, checked: `python bench/book_check.py [--corpus PATH]`.

Trains with the book's settings twice — clipping off (--clip 0, what the book's code really does) and
clipping at θ = 0.01 (what it means to do) — and checks the targets: unclipped, perplexity ≤ 2.0 at
epoch 100 and ≤ 1.05 at epoch 250; clipped, ≤ 1.05 at epoch 250 (clipping slows the first
100 epochs). Prints the book's report lines for each run, then a table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine import events
from engine.config import TrainConfig
from engine.data.corpus import load_corpus
from engine.trainer import Trainer

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "jaychou_lyrics.txt.zip"
BOOK = {50: 10.658418, 100: 1.308539, 150: 1.070370, 200: 1.034663, 250: 1.021437}


def run(config: TrainConfig, corpus_path: Path) -> list[events.EpochEnd]:
    history: list[events.EpochEnd] = []

    def report(event: events.Event) -> None:
        if isinstance(event, events.EpochEnd):
            history.append(event)
        elif isinstance(event, events.Samples):
            print(history[-1].book_line())
            for _, text in event.samples:
                print(f" - {text}")
        elif isinstance(event, events.Failed):
            print(event.message)

    Trainer(config, load_corpus(corpus_path, config.max_chars), report).run()
    return history


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {}
    for label, clip in (("clip 0 (book in effect)", 0.0), ("clip 0.01 (default)", 0.01)):
        print(f"== {label}")
        results[label] = run(TrainConfig(clip=clip, seed=args.seed), args.corpus)
    print(f"\n{'epoch':>5}  {'book':>10}  " + "  ".join(f"{label:>24}" for label in results))
    for epoch, book in BOOK.items():
        row = "  ".join(f"{h[epoch - 1].perplexity:>24.6f}" for h in results.values())
        print(f"{epoch:>5}  {book:>10.6f}  {row}")
    seconds = {label: sum(e.seconds for e in h) / len(h) for label, h in results.items()}
    print("mean s/epoch: " + ", ".join(f"{label}: {s:.3f}" for label, s in seconds.items()))
    unclipped, clipped = results.values()
    ok = unclipped[99].perplexity <= 2.0 and unclipped[249].perplexity <= 1.05 and clipped[249].perplexity <= 1.05
    targets = "clip 0: ≤ 2.0 at epoch 100 and ≤ 1.05 at 250; clip 0.01: ≤ 1.05 at 250"
    print(f"targets ({targets}):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
