"""--preset d2l-en against the English edition's own loop (bench/d2l_en_reference.py), side by side, interleaved.

    python bench/d2l_en_compare.py                     # 100 epochs (the book's), 3 rounds, torch's threads
    python bench/d2l_en_compare.py --epochs 30 --rounds 5 --threads 1

Each round trains both from scratch, each in a fresh subprocess, with the round's seed (seed, seed + 1, ...): the
spread over rounds is the noise the two are compared within. Figures per contender: the last epoch's training and
validation perplexity (exp of the mean cross-entropy; the engine's validation is its held-out perplexity, the
book's its validation windows'), the best validation perplexity, and training speed: predicted characters per
second of training wall time (data pipeline included, validation excluded) over the median epoch, the first left
out as warm-up. The speed ratio is the median of each round's engine/book ratio. Targets: validation perplexity
within the rounds' spread of the book's (or within 3 %), and the engine ≥ 2× the book's characters per second.
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
CONTENDERS = ("book", "engine")


def worker(kind: str, epochs: int, seed: int, threads: int | None) -> dict:
    """Train one contender in this process: per-epoch figures."""
    if kind == "book":
        sys.path.insert(0, str(ROOT / "bench"))
        import d2l_en_reference

        result = d2l_en_reference.train(epochs, seed, threads, quiet=True)
        return {"history": result["history"], "sample": result["sample"]}

    from engine import events
    from engine.session import open_session

    stamps: list[float] = []
    history: list[dict] = []

    def listener(event: events.Event) -> None:
        if isinstance(event, events.Started | events.EpochEnd):
            stamps.append(time.perf_counter())
        if isinstance(event, events.EpochEnd):
            wall = stamps[-1] - stamps[-2]  # the whole loop, data included; the evaluation is taken out below
            history.append(
                {
                    "epoch": event.epoch,
                    "perplexity": event.perplexity,
                    "val_perplexity": event.val_perplexity,
                    "seconds": wall - (event.eval_seconds or 0.0),
                    "eval_seconds": event.eval_seconds,
                    "chars": event.chars,
                }
            )
        elif isinstance(event, events.Samples):
            history[-1]["sample"] = event.samples[0][1] if event.samples else ""
        elif isinstance(event, events.Failed):
            raise SystemExit(event.message)

    session = open_session({"preset": "d2l-en", "epochs": epochs, "seed": seed}, listener=listener, threads=threads)
    session.trainer.run()
    return {"history": history, "sample": history[-1].get("sample", "")}


def run_worker(kind: str, epochs: int, seed: int, threads: int | None) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--epochs", str(epochs), "--seed", str(seed)]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def chars_per_second(run: dict) -> float:
    epochs = run["history"][1:] or run["history"]
    return statistics.median(e["chars"] / e["seconds"] for e in epochs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads in every run (default: torch's choice)")
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.epochs, args.seed, args.threads)))
        return 0
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is warm-up)")
    import torch

    print(
        f"# d2l-en: {args.epochs} epochs × {args.rounds} rounds, threads {args.threads or torch.get_num_threads()}, "
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, load {load_average()}",
        flush=True,
    )
    runs: dict[str, list[dict]] = {kind: [] for kind in CONTENDERS}
    for round_number, kind in itertools.product(range(args.rounds), CONTENDERS):
        run = run_worker(kind, args.epochs, args.seed + round_number, args.threads)
        runs[kind].append(run)
        last = run["history"][-1]
        print(
            f"  round {round_number + 1} {kind:<6}: train {last['perplexity']:.4f}  val {last['val_perplexity']:.4f}  "
            f"{chars_per_second(run):>10,.0f} chars/s  sample {run['sample']!r}  (load {load_average()})",
            flush=True,
        )
    print(f"\n{'contender':<9} {'train ppl':>10} {'val ppl':>9} {'val range':>17} {'best val':>9} {'chars/s':>10}")
    summary = {}
    for kind in CONTENDERS:
        finals = [r["history"][-1] for r in runs[kind]]
        vals = [f["val_perplexity"] for f in finals]
        best = statistics.median(min(e["val_perplexity"] for e in r["history"]) for r in runs[kind])
        summary[kind] = (statistics.median(vals), min(vals), max(vals))
        print(
            f"{kind:<9} {statistics.median(f['perplexity'] for f in finals):>10.4f} {statistics.median(vals):>9.4f} "
            f"{min(vals):>8.4f}-{max(vals):<8.4f} {best:>9.4f} "
            f"{statistics.median(chars_per_second(r) for r in runs[kind]):>10,.0f}"
        )
    ratios = [chars_per_second(e) / chars_per_second(b) for e, b in zip(runs["engine"], runs["book"], strict=True)]
    ratio = statistics.median(ratios)
    print(f"engine / book chars/s: median {ratio:.2f}× (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    (engine_val, engine_lo, engine_hi), (book_val, book_lo, book_hi) = summary["engine"], summary["book"]
    overlap = engine_lo <= book_hi and book_lo <= engine_hi
    close = abs(engine_val - book_val) <= 0.03 * book_val
    print(f"load after: {load_average()}")
    verdict = "met" if (overlap or close) and ratio >= 2 else "MISSED"
    print(f"targets (val perplexity within the rounds' spread or 3 % of the book's; ≥ 2× its chars/s): {verdict}")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
