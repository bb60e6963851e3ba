"""Quality guard for --precision bf16: over three seeds, bf16's training perplexity after the full run within 2 % of
fp32's, and its best held-out perplexity within 3 %, for the book's run with RNN, GRU and LSTM and for d2l-en.

    nice -n 15 python bench/precision_quality.py                  # all 24 runs; results appended as they finish
    python bench/precision_quality.py --table                      # the table of what the results file holds
    python bench/precision_quality.py --runs rnn --seeds 0 --epochs 20   # a quick look
    nice -n 15 python bench/precision_quality.py --runs gru --keep grad_hidden   # a bf16 variant: one product in fp32
    nice -n 15 python bench/precision_quality.py --runs gru --seeds 0 --nudge     # the control: fp32 against itself

Each run is a fresh subprocess on one thread (so quality does not depend on the machine's load; only the
seconds do) training the preset's settings on the real corpus, and appends one JSON line to
bench/results/precision_quality.jsonl: the final epoch's training perplexity, the best held-out perplexity,
and the training seconds. Runs go seed by seed (every contender's seed 0 first), so a partial file still
compares like with like; a run already in the file is not run again (delete the file to start over).
bf16 needs a CPU with native bfloat16 (engine/precision.py); elsewhere those runs fail in one line.
The table has a row per run and bf16 variant (the products kept in float32; a nudged run, with one weight one
float32 step off at the start, is a row of its own), each against the fp32 runs of the same seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "precision_quality.jsonl"
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip"
# name → explicit settings over the preset's (d2l-zh: the book's 250 epochs; d2l-en: its own 100-epoch run).
RUNS: dict[str, dict[str, Any]] = {
    "rnn": {"cell": "rnn"},
    "gru": {"cell": "gru"},
    "lstm": {"cell": "lstm"},
    "d2l-en": {"preset": "d2l-en"},
}
PRECISIONS = ("fp32", "bf16")
TRAIN_LIMIT, HELD_OUT_LIMIT = 0.02, 0.03  # bf16 against fp32, median over seeds and worst seed alike


def worker(
    run: str,
    precision: str,
    seed: int,
    epochs: int | None,
    corpus: Path,
    keep: frozenset[str] | None = None,
    nudge: bool = False,
) -> dict[str, Any]:
    """Train one run in this process; its figures. keep: output-layer products to keep in float32 in bf16, instead of
    what engine/precision.py chooses (a variant to measure). nudge: move one weight (the output bias's first) by
    one float32 step before training, the least perturbation there is (a control: how far a run parts from itself)."""
    import dataclasses

    import torch

    from engine import events
    from engine.config import preset_config
    from engine.session import open_session

    torch.set_num_threads(1)
    overrides: dict[str, Any] = {**RUNS[run], "seed": seed, "precision": precision, "pred_period": 10**6}
    if epochs:
        overrides["epochs"] = epochs
    if preset_config(overrides).preset == "d2l-zh":
        overrides["corpus"] = str(corpus)
    history: list[events.EpochEnd] = []
    failure: list[str] = []

    def listener(event: events.Event) -> None:
        if isinstance(event, events.EpochEnd):
            history.append(event)
        elif isinstance(event, events.Failed):
            failure.append(event.message)

    session = open_session(overrides, listener=listener, threads=1)
    if keep is not None and session.trainer.precision.name == "bf16":
        session.trainer.precision = dataclasses.replace(session.trainer.precision, keep_fp32=keep)
    if nudge:
        with torch.no_grad():
            bias = session.trainer.model.dense.bias
            bias[0] = torch.nextafter(bias[0], torch.tensor(float("inf")))
    session.trainer.run()
    if failure:
        raise SystemExit(failure[0])
    held = [e.val_perplexity for e in history if e.val_perplexity is not None]
    return {
        "run": run,
        "precision": precision,
        "seed": seed,
        "epochs": len(history),
        "train_ppl": history[-1].perplexity,
        "best_val_ppl": min(held) if held else None,
        "seconds": sum(e.seconds for e in history),
        "chosen": session.trainer.precision.describe(),
        "keep_fp32": sorted(session.trainer.precision.keep_fp32),
        **({"nudged": True} if nudge else {}),
    }


PRODUCTS = ("logits", "grad_hidden", "grad_weight")


def keep_set(text: str) -> frozenset[str] | None:
    """--keep's value: None for '' (engine/precision.py's choice), else the products named ('none': no product)."""
    if not text:
        return None
    names = frozenset(name.strip() for name in text.split(",")) - {"none"}
    unknown = names - set(PRODUCTS)
    if unknown:
        raise SystemExit(f"--keep: {', '.join(sorted(unknown))} is not one of {', '.join(PRODUCTS)} or none")
    return names


def done_runs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def kept(result: dict[str, Any]) -> tuple[str, ...]:
    """The output-layer products a bf16 result kept in float32 (results from before the field: none)."""
    if result.get("nudged"):
        return (f"{result['precision']} nudged",)
    return tuple(result.get("keep_fp32", ()))


def table(results: list[dict[str, Any]]) -> tuple[str, bool]:
    """The comparison per run and bf16 variant (median over seeds, worst seed), each against the same seeds' fp32
    runs, and whether every run meets the limits in the variant engine/precision.py uses now (a cell it lists in
    GUARD_MISSED, which auto keeps in fp32, aside)."""
    from engine.precision import GUARD_MISSED

    lines = [
        f"{'run':<7} {'kept in fp32':<12} {'seeds':>5} {'epochs':>6} {'fp32 train':>10} {'bf16 train':>10} {'Δ':>7} "
        f"{'worst':>7} {'fp32 held':>9} {'bf16 held':>9} {'Δ':>7} {'worst':>7} {'fp32 s':>7} {'bf16 s':>7}  guard"
    ]
    ok = True
    for run in RUNS:
        fp32 = {r["seed"]: r for r in results if r["run"] == run and r["precision"] == "fp32" and not r.get("nudged")}
        variants: dict[tuple[str, ...], dict[int, dict[str, Any]]] = {}
        for r in results:
            if r["run"] == run and (r["precision"] == "bf16" or r.get("nudged")) and r["seed"] in fp32:
                variants.setdefault(kept(r), {})[r["seed"]] = r
        for variant, by_seed in sorted(variants.items()):
            pairs = [(fp32[seed], bf16) for seed, bf16 in sorted(by_seed.items())]
            train = [b["train_ppl"] / a["train_ppl"] - 1 for a, b in pairs]
            held = [b["best_val_ppl"] / a["best_val_ppl"] - 1 for a, b in pairs]
            worst_train, worst_held = max(train, key=abs), max(held, key=abs)
            met = abs(worst_train) <= TRAIN_LIMIT and abs(worst_held) <= HELD_OUT_LIMIT
            cell = RUNS[run].get("cell", "rnn")
            if not variant and cell not in GUARD_MISSED:  # engine/precision.py keeps no product in fp32
                ok &= met

            def med(key: str, i: int, pairs: list[tuple[dict[str, Any], dict[str, Any]]] = pairs) -> float:
                return statistics.median(p[i][key] for p in pairs)

            lines.append(
                f"{run:<7} {','.join(variant) or '-':<12} {len(pairs):>5} {pairs[0][0]['epochs']:>6} "
                f"{med('train_ppl', 0):>10.4f} {med('train_ppl', 1):>10.4f} {statistics.median(train):>+7.2%} "
                f"{worst_train:>+7.2%} {med('best_val_ppl', 0):>9.2f} {med('best_val_ppl', 1):>9.2f} "
                f"{statistics.median(held):>+7.2%} {worst_held:>+7.2%} {med('seconds', 0):>7.1f} "
                f"{med('seconds', 1):>7.1f}  {'met' if met else 'MISSED'}"
            )
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", choices=tuple(RUNS), default=list(RUNS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="instead of each preset's (a quick look; not the guard)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--table", action="store_true", help="only print the table of the results file")
    parser.add_argument(
        "--keep",
        default="",
        help="a variant: the output layer's products kept in float32 in the bf16 runs, comma-separated "
        "(logits, grad_hidden, grad_weight; 'none' for none), instead of what engine/precision.py chooses",
    )
    parser.add_argument("--nudge", action="store_true", help="a control run: one weight one float32 step off")
    parser.add_argument("--worker", nargs=3, metavar=("RUN", "PRECISION", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run, precision, seed = args.worker
        print(json.dumps(worker(run, precision, int(seed), args.epochs, args.corpus, keep_set(args.keep), args.nudge)))
        return 0
    if not args.table:
        keep = keep_set(args.keep)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            for run in args.runs:
                for precision in PRECISIONS:
                    key = (run, precision, seed)
                    variant = () if precision == "fp32" else tuple(sorted(keep or ()))
                    if any(
                        (r["run"], r["precision"], r["seed"]) == key
                        and bool(r.get("nudged")) == args.nudge
                        and (precision == "fp32" or args.nudge or kept(r) == variant)
                        for r in done_runs(args.results)
                    ):
                        continue
                    command = [sys.executable, __file__, "--worker", run, precision, str(seed), "--keep", args.keep]
                    command += ["--corpus", str(args.corpus), "--results", str(args.results)]
                    if args.epochs:
                        command += ["--epochs", str(args.epochs)]
                    if args.nudge:
                        command += ["--nudge"]
                    started = time.perf_counter()
                    done = subprocess.run(command, capture_output=True, text=True, check=False)
                    if done.returncode != 0:
                        print(f"{run} {precision} seed {seed} failed: {done.stderr.strip()[-500:]}", flush=True)
                        continue
                    result = json.loads(done.stdout.splitlines()[-1])
                    with args.results.open("a") as file:
                        file.write(json.dumps(result) + "\n")
                    print(
                        f"{run} {precision} seed {seed}: train {result['train_ppl']:.4f}, best held-out "
                        f"{result['best_val_ppl']:.2f} ({time.perf_counter() - started:.0f} s wall, "
                        f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())})",
                        flush=True,
                    )
    text, ok = table(done_runs(args.results))
    print(f"\n# precision quality: bf16 against fp32 ({args.results})\n{text}")
    from engine.precision import GUARD_MISSED

    limits = f"limits (training ±{TRAIN_LIMIT:.0%}, best held-out ±{HELD_OUT_LIMIT:.0%}, every seed):"
    aside = ", ".join(cell.upper() for cell in GUARD_MISSED)
    print(limits, "met" if ok else "MISSED", f"(the {aside} aside: auto keeps it in fp32, engine/precision.py)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
