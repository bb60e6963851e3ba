"""How long the copied-text detector's suffix array takes to build (engine/lab/copies.py), and a query.

    python bench/copies_index.py                 # the whole lyrics (max-chars 0) and The Time Machine
    python bench/copies_index.py --repeat 3

One thread. Prints the median of the rounds for each text; say the machine's load with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from engine.data.corpus import TIME_MACHINE_PATH, load_corpus
from engine.lab.copies import TextIndex, sample_copy

ROOT = Path(__file__).resolve().parents[1]
LYRICS = Path(os.environ.get("RNN_TUI_CORPUS") or ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    texts = {
        "lyrics (whole)": load_corpus(LYRICS, 0).text,
        "The Time Machine": load_corpus(TIME_MACHINE_PATH, 0, "d2l-en").text,
    }
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name, text in texts.items():
        builds, queries = [], []
        for _ in range(args.repeat):
            index = TextIndex(text)
            builds.append(index.build_seconds)
            sample = text[len(text) // 2 : len(text) // 2 + 50]
            started = time.perf_counter()
            found = sample_copy(index, sample)
            queries.append(time.perf_counter() - started)
            assert found.longest_copy == 50
        print(
            f"{name}: {len(text):,} characters, suffix array {statistics.median(builds):.3f} s, "
            f"a 50-character sample checked in {statistics.median(queries) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
