"""Each regulariser's effect on held-out perplexity (docs/regularisation.md's table), one headless run per row.

    nice -n 5 python bench/regularisers.py            # every row; a Markdown table on stdout
    python bench/regularisers.py --epochs 4 --rows base,io-dropout

Every row is the same small model on the same text (The Time Machine's first 10,000 letters, read as d2l-en reads
them; the 5,000 after them held out, 5,000 more the test text): an LSTM of 128, Adam, random minibatches, seed 0,
with one regulariser turned on. The figures are the best held-out epoch's perplexity and the test perplexity the run
reports (at that epoch's weights). Each run is `rnn-tui train --headless` in a subprocess: the command printed beside
each row reruns it. Seconds depend on the machine's load; perplexities only on the CPU's arithmetic.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = (
    "--preset d2l-en --cell lstm --hidden 128 --optimizer adam --lr 0.005 --clip 1 --sampling random "
    "--batch-size 32 --num-steps 35 --seed 0 --pred-period 1000"
)
ROWS: dict[str, str] = {
    "base": "",
    "dropout between layers (2 layers)": "--layers 2 --dropout 0.3",
    "io-dropout": "--io-dropout 0.3",
    "io-dropout variational": "--io-dropout 0.3 --variational on",
    "embed": "--embed 32",
    "embed + tie": "--embed 32 --tie on",
    "tie (embedding as wide as hidden)": "--tie on",
    "weight decay l2": "--weight-decay 0.01",
    "weight decay decoupled": "--weight-decay 0.1 --decay decoupled",
    "schedule plateau": "--schedule plateau",
    "schedule cosine": "--schedule cosine",
}


def run(extra: str, epochs: int) -> dict[str, float | int | None]:
    with tempfile.TemporaryDirectory() as folder:
        metrics = Path(folder) / "metrics.jsonl"
        argv = ["rnn-tui", "train", "--headless", *shlex.split(BASE), "--epochs", str(epochs), *shlex.split(extra)]
        started = time.perf_counter()
        subprocess.run([*argv, "--metrics", str(metrics)], check=True, capture_output=True, cwd=ROOT)
        seconds = time.perf_counter() - started
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    epochs_with_val = [r for r in records if r.get("val_perplexity") is not None]
    best = min(epochs_with_val, key=lambda r: r["val_perplexity"])
    return {
        "best_held_out": best["val_perplexity"],
        "best_epoch": best["epoch"],
        "test": records[-1].get("test_perplexity"),
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rows", help="comma-separated row names (default: all)")
    args = parser.parse_args()
    names = args.rows.split(",") if args.rows else list(ROWS)
    print(f"| setting | best held-out (epoch) | test | seconds (under load) | command: rnn-tui train --headless {BASE} "
          f"--epochs {args.epochs} … |")
    print("|---|---|---|---|---|")
    for name in names:
        figures = run(ROWS[name], args.epochs)
        test = figures["test"]
        shown_test = f"{test:.3f}" if isinstance(test, float) else "–"
        print(
            f"| {name} | {figures['best_held_out']:.3f} ({figures['best_epoch']}) | {shown_test} | "
            f"{figures['seconds']:.0f} | `{ROWS[name] or '(nothing more)'}` |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
