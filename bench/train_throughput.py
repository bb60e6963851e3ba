"""Training throughput: the book's loop (bench/reference.py) against the engine, interleaved A B C A B C.

    python bench/train_throughput.py                         # RNN, 100 epochs, 3 rounds, torch's threads
    python bench/train_throughput.py --cell all --epochs 30 --rounds 3
    python bench/train_throughput.py --threads 1             # what a loaded 2-core machine can trust
    python bench/train_throughput.py --contenders book engine "engine bf16"   # the book, fp32, bf16 side by side
    python bench/train_throughput.py --profile --threads 1  # where an engine batch's time goes, fp32 and bf16
    python bench/train_throughput.py --cell all --contenders book engine torch scratch --threads 1 --epochs 10
                                                             # the book's exercise: fused vs concise vs from scratch

Each run is a fresh subprocess (so no thread setting, allocator tuning or warm cache leaks from one
contender into the next) training from scratch with the book's settings on the real corpus. Contenders:
`book` (the book's loop as printed), `engine clip 0` (the engine in book mode: --clip 0, what the book's
code really does), `engine` (default clip 0.01, fp32) and `engine bf16` (--precision bf16: the output
layer's products in bfloat16; only where the CPU multiplies bfloat16 natively, engine/precision.py), and, asked
for by name, `torch` and `scratch` (--impl torch: nn.RNN/GRU/LSTM fed one-hot with autograd, the book's §6.5;
--impl scratch: a Python loop over time steps, §6.4; both clip 0.01, fp32; held to the perplexity target only).
Speed is characters per second over the median
epoch (the first epoch is warm-up and left out); the ratio is the median of each round's engine/book
ratio. `× book CPU` compares the CPU time of whole runs: with --threads 1 it is the figure that
contention from other processes disturbs least (with more threads, OpenMP's spinning counts too).
Final perplexity is the last epoch's, median over rounds (the seed is fixed; the book's vocabulary
order follows PYTHONHASHSEED, fixed to 0 here).
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip"
CONTENDERS = ("book", "engine clip 0", "engine", "engine bf16")
# The engine with --impl torch / scratch: only run when named, and not held to the speed targets.
IMPLS = ("torch", "scratch")
TARGETS = {"rnn": 2.0, "gru": 1.5, "lstm": 1.5}


def worker(kind: str, cell: str, epochs: int, corpus: Path, threads: int | None, device: str, seed: int) -> dict:
    """Train one contender in this process; return per-epoch wall seconds and perplexities."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    cpu_start = time.process_time()
    if kind == "book":
        sys.path.insert(0, str(ROOT / "bench"))
        import reference

        result = reference.train_reference(
            corpus, cell=cell, num_epochs=epochs, seed=seed, quiet=True, device=torch.device(device)
        )
        return {
            "seconds": result["epoch_seconds"],
            "perplexities": result["perplexities"],
            "chars": result["chars"],
            "cpu": time.process_time() - cpu_start,
        }

    from engine import events
    from engine.config import TrainConfig
    from engine.data.corpus import load_corpus
    from engine.trainer import Trainer

    stamps: list[float] = []
    history: list[events.EpochEnd] = []

    def listener(event: events.Event) -> None:
        # Wall time between epoch ends: everything the loop does, not just the batches it times itself.
        if isinstance(event, events.Started | events.EpochEnd):
            stamps.append(time.perf_counter())
        if isinstance(event, events.EpochEnd):
            history.append(event)
        elif isinstance(event, events.Failed):
            raise SystemExit(event.message)

    clip = 0.0 if kind == "engine clip 0" else TrainConfig().clip
    precision = "bf16" if kind == "engine bf16" else "fp32"
    impl = kind if kind in IMPLS else "fused"
    config = TrainConfig(
        cell=cell, epochs=epochs, clip=clip, seed=seed, pred_period=10**6, device=device, precision=precision, impl=impl
    )
    Trainer(config, load_corpus(corpus, config.max_chars), listener, threads=threads).run()
    return {
        "seconds": [b - a for a, b in itertools.pairwise(stamps)],
        "perplexities": [e.perplexity for e in history],
        "chars": sum(e.chars for e in history),
        "cpu": time.process_time() - cpu_start,
    }


def clip_cost(trainer: Any, repeats: int = 400) -> None:
    """What measuring every step's gradient norm costs a batch: the trainer's clip stage (norm, clip, one .item()
    and the record) against torch's clip_grad_norm_ alone (what it did before), and with clip 0 (the norm only,
    where nothing was done before); on the gradients of the last batch, interleaved, median µs."""
    import torch

    model = trainer.model
    samples: dict[str, list[float]] = {"clip_grad_norm_ (before)": [], "engine clip 0.01": [], "engine clip 0": []}
    saved = [p.grad.clone() for p in model.parameters()]
    for _ in range(repeats):
        for name in samples:
            for p, grad in zip(model.parameters(), saved, strict=True):
                p.grad.copy_(grad)
            started = time.perf_counter()
            if name.startswith("clip_grad_norm_"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01, foreach=True)
            else:
                trainer.config = trainer.config.with_changes(clip=0.0 if name.endswith(" 0") else 0.01)
                trainer._clip(1, 1)
            samples[name].append((time.perf_counter() - started) * 1e6)
    shown = ", ".join(f"{name} {statistics.median(values):.0f} µs" for name, values in samples.items())
    print(f"          clip stage alone: {shown}")


def profile(cell: str, corpus: Path, threads: int | None, precisions: list[str], rounds: int = 6) -> None:
    """A batch of the book's run cut into its stages (median ms over the real batches of `rounds` epochs), per
    precision, and the output layer's three products alone: the floor those products put under a batch."""
    import torch

    from engine.config import TrainConfig
    from engine.data.corpus import load_corpus
    from engine.kernels import LinearCrossEntropy
    from engine.model import detach_state
    from engine.trainer import Trainer

    if threads:
        torch.set_num_threads(threads)
    stages = ("recurrence fwd", "output fwd", "output bwd", "recurrence bwd", "clip", "adam", "batch")
    print(f"{'precision':<9} " + " ".join(f"{name:>14}" for name in stages) + "   (ms, median of each stage)")
    for precision in precisions:
        config = TrainConfig(cell=cell, seed=0, epochs=1, pred_period=10**6, precision=precision)
        trainer = Trainer(config, load_corpus(corpus, config.max_chars), threads=threads)
        model, optimizer, low = trainer.model, trainer.optimizer, trainer.precision.output_dtype
        weight, bias = model.dense.weight, model.dense.bias
        rest = [p for p in model.parameters() if p is not weight and p is not bias]
        times: dict[str, list[float]] = {name: [] for name in stages}
        state = None
        for _ in range(rounds):
            for inputs, targets in trainer._batches():
                marks = [time.perf_counter()]
                outputs, new_state = model.recurrent(inputs, state)
                marks.append(time.perf_counter())
                flat = outputs.reshape(-1, model.hidden)
                loss = LinearCrossEntropy.apply(flat, weight, bias, targets.reshape(-1), low)
                loss.item()
                marks.append(time.perf_counter())
                optimizer.zero_grad(set_to_none=True)
                grad_flat, weight.grad, bias.grad = torch.autograd.grad(loss, [flat, weight, bias])
                marks.append(time.perf_counter())
                torch.autograd.backward(flat, grad_flat, inputs=rest)
                marks.append(time.perf_counter())
                trainer._clip(1, 1)  # the norm, clipping, its one host sync and the step's record: as training does
                marks.append(time.perf_counter())
                optimizer.step()
                marks.append(time.perf_counter())
                for name, (a, b) in zip(stages[:-1], itertools.pairwise(marks), strict=True):
                    times[name].append((b - a) * 1e3)
                times["batch"].append((marks[-1] - marks[0]) * 1e3)
                state = detach_state(new_state)
        print(f"{precision:<9} " + " ".join(f"{statistics.median(times[name]):>14.2f}" for name in stages))
        if precision == "fp32":
            clip_cost(trainer)
    vocab, hidden, rows = len(trainer.vocab), model.hidden, config.batch_size * config.num_steps
    flop = 3 * 2 * vocab * hidden * rows
    for dtype in (torch.float32, torch.bfloat16):
        w, h, d = (
            torch.randn(vocab, hidden, dtype=dtype),
            torch.randn(rows, hidden, dtype=dtype),
            torch.randn(vocab, rows, dtype=dtype),
        )
        samples = []
        for _ in range(30):
            started = time.perf_counter()
            torch.mm(w, h.t()), d.t() @ w, d @ h
            samples.append(time.perf_counter() - started)
        best = statistics.median(samples)
        print(
            f"the three output-layer products, ({vocab} × {hidden}) by ({hidden} × {rows}), {dtype}: "
            f"{best * 1e3:.2f} ms median ({flop / best / 1e9:.0f} GFLOP/s)"
        )


def run_worker(kind: str, cell: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--cell", cell, "--epochs", str(args.epochs)]
    command += ["--corpus", str(args.corpus), "--device", args.device, "--seed", str(args.seed)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} ({cell}) failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def chars_per_second(run: dict) -> float:
    seconds = run["seconds"][1:] or run["seconds"]  # the first epoch warms up
    per_epoch = run["chars"] / len(run["seconds"])
    return per_epoch / statistics.median(seconds)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "unknown CPU"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def bench_cell(cell: str, args: argparse.Namespace) -> dict[str, Any]:
    contenders = args.contenders
    runs: dict[str, list[dict]] = {kind: [] for kind in contenders}
    for round_number in range(1, args.rounds + 1):
        for kind in contenders:
            runs[kind].append(run_worker(kind, cell, args))
        speeds = "  ".join(f"{kind} {chars_per_second(runs[kind][-1]):,.0f}" for kind in contenders)
        print(f"  {cell} round {round_number}: chars/s {speeds}  (load {load_average()})", flush=True)
    book = [chars_per_second(r) for r in runs["book"]]
    rows = []
    for kind in contenders:
        speeds = [chars_per_second(r) for r in runs[kind]]
        ratios = [s / b for s, b in zip(speeds, book, strict=True)]
        perplexity = statistics.median(r["perplexities"][-1] for r in runs[kind])
        seconds = statistics.median(statistics.median(r["seconds"][1:] or r["seconds"]) for r in runs[kind])
        cpu_ratios = [b["cpu"] / r["cpu"] for r, b in zip(runs[kind], runs["book"], strict=True)]
        speed, ratio, cpu_ratio = statistics.median(speeds), statistics.median(ratios), statistics.median(cpu_ratios)
        rows.append((kind, speed, seconds, ratio, min(ratios), perplexity, cpu_ratio))
    return {"cell": cell, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=("rnn", "gru", "lstm", "all"), default="rnn")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads in every run (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both contenders)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=CONTENDERS + IMPLS,
        help="which to run, book first (default: all but torch and scratch; engine bf16 only where bfloat16 is native)",
    )
    parser.add_argument("--profile", action="store_true", help="time a batch's stages instead (fp32, bf16 if native)")
    parser.add_argument("--worker", choices=CONTENDERS + IMPLS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is warm-up)")
    if args.worker:
        cell = args.cell
        print(json.dumps(worker(args.worker, cell, args.epochs, args.corpus, args.threads, args.device, args.seed)))
        return 0

    import torch  # only for the header

    from engine.precision import choose, detect

    support = detect(torch.device(args.device))
    native = choose("auto", torch.device(args.device), support).name == "bf16"
    if args.contenders is None:
        args.contenders = [kind for kind in CONTENDERS if kind != "engine bf16" or native]
    if args.contenders[0] != "book":
        parser.error("--contenders must start with book (the ratios are to it)")
    if "engine bf16" in args.contenders and not native:
        parser.error(f"engine bf16 needs native bfloat16: {support.why}")
    if args.profile:
        cell = "rnn" if args.cell == "all" else args.cell
        print(
            f"# batch profile: {cell}, threads {args.threads or torch.get_num_threads()}, {cpu_name()}, "
            f"load {load_average()}"
        )
        profile(cell, args.corpus, args.threads, ["fp32", "bf16"] if native else ["fp32"])
        print(f"load after: {load_average()}")
        return 0

    cells = ("rnn", "gru", "lstm") if args.cell == "all" else (args.cell,)
    print(
        f"# training throughput: {args.epochs} epochs × {args.rounds} rounds, device {args.device}, "
        f"threads {args.threads or f'default ({torch.get_num_threads()})'}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs ({cpu_name()}), bf16 {'native: ' if native else 'not native: '}{support.why}, "
        f"load {load_average()}",
        flush=True,
    )
    results = [bench_cell(cell, args) for cell in cells]
    header = f"{'cell':<5} {'contender':<14} {'chars/s':>9} {'s/epoch':>8} {'× book':>7} {'(min)':>6} {'final ppl':>10}"
    print(f"\n{header} {'× book CPU':>10}")
    missed = []
    for result in results:
        cell = result["cell"]
        for kind, speed, seconds, ratio, worst, perplexity, cpu_ratio in result["rows"]:
            figures = f"{speed:>9,.0f} {seconds:>8.3f} {ratio:>7.2f} {worst:>6.2f} {perplexity:>10.4f}"
            figures += f" {cpu_ratio:>10.2f}"
            print(f"{cell:<5} {kind:<14} {figures}")
        book_ppl = result["rows"][0][5]
        for kind, _, _, ratio, _, perplexity, _ in result["rows"][1:]:
            if ratio < TARGETS[cell] and kind not in IMPLS:  # only fused needs to be fast
                missed.append(f"{cell} {kind} {ratio:.2f}× < {TARGETS[cell]}×")
            if perplexity > book_ppl * 1.01 + 0.01:
                missed.append(f"{cell} {kind} perplexity {perplexity:.4f} > book {book_ppl:.4f}")
    print(f"load after: {load_average()}")
    print("targets (RNN ≥ 2.0×, GRU/LSTM ≥ 1.5×, perplexity no worse):", "met" if not missed else "; ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
