"""What held-out evaluation costs, as a share of an epoch's training time, for several held-out sizes.

    python bench/eval_overhead.py                          # the book's run; val-chars 1,000 2,000 3,000 5,000
    python bench/eval_overhead.py --preset d2l-en --val-chars 5000
    python bench/eval_overhead.py --epochs 12 --rounds 3 --threads 1

Each (size, round) trains from scratch in a fresh subprocess with the seed fixed, interleaved (size A, B, C, A, B,
C, ...) so a load that comes and goes hits every size alike. An epoch's evaluation (held-out and fresh-state, one
forward pass) is EpochEnd.eval_seconds; the epoch's training time is the wall time from one epoch's end to the
next, less that evaluation. The share is the median over epochs (the first left out as warm-up), then over rounds.
The default held-out size is chosen so that this stays near or under 10 % (README, "What the perplexity means").
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from train_throughput import load_average  # bench/ is the script's folder, so first on sys.path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = Path(os.environ.get("RNN_TUI_CORPUS") or ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip")


def worker(preset: str, val_chars: int, epochs: int, threads: int | None, corpus: Path) -> dict:
    from engine import events
    from engine.session import open_session

    stamps: list[float] = []
    shares: list[float] = []
    evals: list[float] = []

    def listener(event: events.Event) -> None:
        if isinstance(event, events.Started | events.EpochEnd):
            stamps.append(time.perf_counter())
        if isinstance(event, events.EpochEnd):
            evaluation = event.eval_seconds or 0.0
            training = stamps[-1] - stamps[-2] - evaluation
            shares.append(evaluation / training)
            evals.append(evaluation)
        elif isinstance(event, events.Failed):
            raise SystemExit(event.message)

    overrides = {"preset": preset, "val_chars": val_chars, "epochs": epochs, "seed": 0, "pred_period": 10**6}
    if preset == "d2l-zh":
        overrides["corpus"] = str(corpus)
    session = open_session(overrides, listener=listener, threads=threads)
    session.trainer.run()
    return {"shares": shares[1:], "evals": evals[1:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("d2l-zh", "d2l-en"), default="d2l-zh")
    parser.add_argument("--val-chars", type=int, nargs="+", default=[1000, 2000, 3000, 5000])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.preset, args.val_chars[0], args.epochs, args.threads, args.corpus)
        print(json.dumps(result))
        return 0
    print(
        f"# evaluation overhead, preset {args.preset}: {args.epochs} epochs × {args.rounds} rounds, "
        f"threads {args.threads or 'default'}, {os.cpu_count()} CPUs, load {load_average()}",
        flush=True,
    )
    shares: dict[int, list[float]] = {size: [] for size in args.val_chars}
    evals: dict[int, list[float]] = {size: [] for size in args.val_chars}
    for round_number, size in itertools.product(range(args.rounds), args.val_chars):
        command = [sys.executable, __file__, "--worker", "--preset", args.preset, "--val-chars", str(size)]
        command += ["--epochs", str(args.epochs), "--corpus", str(args.corpus)]
        if args.threads:
            command += ["--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        result = json.loads(done.stdout.splitlines()[-1])
        shares[size].append(statistics.median(result["shares"]))
        evals[size].append(statistics.median(result["evals"]))
        print(f"  round {round_number + 1} val-chars {size:>6,}: {shares[size][-1]:6.1%}  (load {load_average()})")
    print(f"\n{'val-chars':>9} {'eval ms':>8} {'share of an epoch':>18} {'rounds':>24}")
    for size in args.val_chars:
        rounds = ", ".join(f"{s:.1%}" for s in shares[size])
        milliseconds, share = statistics.median(evals[size]) * 1000, statistics.median(shares[size])
        print(f"{size:>9,} {milliseconds:>8.1f} {share:>18.1%} {rounds:>24}")
    print(f"load after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
