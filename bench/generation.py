"""Latency of a 50-character greedy generation: engine.generate against the book's predict_rnn_pytorch.

    python bench/generation.py                   # RNN, prefix 分开, 50 characters, 200 repeats
    python bench/generation.py --cell all --threads 1

Both run on the same weights (the engine's CharRNN copied into the book's RNNModel, whose nn.RNN has
the same parameters), so their texts must be identical; the book's predictor is timed as printed
(autograd on, the prefix fed one character per call). Repeats alternate A B A B; the table gives the
median and p95 in milliseconds. Untrained weights: the work per character does not depend on them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip"
TARGET_MS = 5.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_cell(cell: str, args: argparse.Namespace) -> tuple[float, float, float, float]:
    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    import reference

    from engine.data.corpus import load_corpus
    from engine.generate import generate
    from engine.model import CharRNN

    corpus = load_corpus(args.corpus, 10_000)
    vocab = corpus.vocab
    torch.manual_seed(0)
    model = CharRNN(len(vocab), cell).eval()
    book = reference.RNNModel(reference._CELLS[cell](len(vocab), 256), len(vocab))
    book.rnn.load_state_dict(model.rnn.state_dict())
    book.dense.load_state_dict(model.dense.state_dict())
    char_to_idx = {c: i for i, c in enumerate(vocab.idx_to_char)}
    device = torch.device("cpu")

    def ours() -> str:
        return generate(model, vocab, args.prefix, args.length)

    def theirs() -> str:
        return reference.predict_rnn_pytorch(
            args.prefix, args.length, book, len(vocab), device, vocab.idx_to_char, char_to_idx
        )

    if ours() != theirs():
        raise SystemExit(f"{cell}: the engine and the book generate different text:\n{ours()}\n{theirs()}")
    times: dict[str, list[float]] = {"engine": [], "book": []}
    for _ in range(3):
        ours(), theirs()
    for _ in range(args.repeats):
        for name, fn in (("engine", ours), ("book", theirs)):
            started = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - started) * 1000)
    return (
        statistics.median(times["engine"]),
        percentile(times["engine"], 0.95),
        statistics.median(times["book"]),
        percentile(times["book"], 0.95),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=("rnn", "gru", "lstm", "all"), default="rnn")
    parser.add_argument("--prefix", default="分开")
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"# {args.length}-character generation from {args.prefix!r}: {args.repeats} repeats, "
        f"threads {torch.get_num_threads()}, torch {torch.__version__}, load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'cell':<5} {'engine ms':>9} {'p95':>6} {'book ms':>8} {'p95':>6} {'speed-up':>8}")
    missed = []
    for cell in ("rnn", "gru", "lstm") if args.cell == "all" else (args.cell,):
        ours, ours_p95, theirs, theirs_p95 = bench_cell(cell, args)
        print(f"{cell:<5} {ours:>9.2f} {ours_p95:>6.2f} {theirs:>8.2f} {theirs_p95:>6.2f} {theirs / ours:>7.1f}×")
        if cell == "rnn" and ours > TARGET_MS:
            missed.append(f"{cell} {ours:.2f} ms")
    # The target is the book's model (an RNN); GRU and LSTM do 3× and 4× its recurrent work per character.
    if args.cell in ("rnn", "all"):
        verdict = "met" if not missed else "MISSED: " + ", ".join(missed)
        print(f"target (RNN engine median ≤ {TARGET_MS:g} ms):", verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
