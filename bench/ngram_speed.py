"""How long the counting baselines take (engine/lab/ngram.py: modified Kneser-Ney, orders 1 to 8, counted in numpy):
fitting on the training text and scoring the held-out and test texts, on the shipped corpora whole and on a text
as large as the corpus size limit allows (the whole Time Machine repeated, to about --large characters).

    python bench/ngram_speed.py                  # lyrics whole, Time Machine whole, 4 M characters
    python bench/ngram_speed.py --large 32000000 --repeat 1

Prints the median of the rounds for each text and the table's best order; say the machine's load with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from engine.data.corpus import MAX_CORPUS_CHARS, TIME_MACHINE_PATH, Corpus, load_corpus
from engine.lab.ngram import ngram_table

ROOT = Path(__file__).resolve().parents[1]
LYRICS = Path(os.environ.get("RNN_TUI_CORPUS") or ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip")


def large(corpus: Corpus, chars: int) -> Corpus:
    """The Time Machine's training text repeated to about chars characters (its held-out and test texts as they are)."""
    times = max(1, chars // max(1, len(corpus.text)))
    return Corpus(corpus.text * times, corpus.vocab, f"{corpus.source} ×{times}", corpus.held_out, (), corpus.test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large", type=int, default=4_000_000, help=f"characters (the limit: {MAX_CORPUS_CHARS:,})")
    args = parser.parse_args()
    english = load_corpus(TIME_MACHINE_PATH, 0, 5_000, 0.1, "d2l-en", test_fraction=0.1)
    texts = {
        "lyrics (whole)": (load_corpus(LYRICS, 0, 1_500, 0.1, test_fraction=0.1), 35),
        "The Time Machine (whole)": (english, 32),
        f"The Time Machine repeated (~{args.large:,})": (large(english, args.large), 32),
    }
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name, (corpus, length) in texts.items():
        seconds = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            table = ngram_table(corpus.vocab, corpus.text, corpus.held_out, length, test_text=corpus.test)
            seconds.append(time.perf_counter() - started)
        n, value = table.best()
        chosen = table.best_test()
        test = f", test {chosen[1]:.2f}" if chosen else ""
        print(
            f"{name}: {len(corpus.text):,} training characters, orders 1-8 fitted and scored on "
            f"{len(corpus.held_out):,} + {len(corpus.test):,}: {statistics.median(seconds):.2f} s "
            f"(median of {args.repeat}); best {n}-gram held-out {value:.2f}{test}"
        )


if __name__ == "__main__":
    main()
