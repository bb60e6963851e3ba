"""Sweep throughput: trials per hour for the book's settings at 20 epochs per trial with 1 and 2 jobs, and the
app's 20 ms UI timer lateness (p50/p95) while the app trains and a sweep of 2 jobs runs beside it.

Each sweep is a real `rnn-tui sweep` process (a fresh SQLite study in a temporary directory, pruning off so every
trial trains all its epochs; only lr varies, around the book's 1e-3). Trials per hour = trials / wall time of the
whole command (process and torch start-up included) × 3600. The UI figure is measured as
bench/app_responsiveness.py does: a 20 ms interval timer in the real app at 100×30, counted while it trains.

    python bench/sweep_throughput.py [--epochs 20] [--trials-per-job 2] [--ui-epochs 6] [--threads N]

--threads N gives each worker N torch threads (default: the sweep's, cores ÷ jobs); on a machine others share,
--threads 1 avoids two OpenMP threads spin-waiting on each other.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEARCH = ["--search", "lr=5e-4:2e-3:log", "--pruner", "none"]


THREADS: list[str] = []  # --threads N when given


def sweep_command(storage: str, epochs: int, trials: int, jobs: int) -> list[str]:
    return [
        sys.executable, "-m", "tui.main", "sweep", "--epochs", str(epochs), "--trials", str(trials),
        "--jobs", str(jobs), "--storage", storage, "--study", "bench", *SEARCH, *THREADS,
    ]  # fmt: skip


def throughput(epochs: int, trials: int, jobs: int) -> tuple[float, float]:
    """(trials per hour, median seconds per trial as the study records them)."""
    import optuna

    with tempfile.TemporaryDirectory() as folder:
        storage = f"sqlite:///{Path(folder) / 'bench.db'}"
        started = time.perf_counter()
        subprocess.run(sweep_command(storage, epochs, trials, jobs), check=True, capture_output=True, cwd=folder)
        wall = time.perf_counter() - started
        done = optuna.load_study(study_name="bench", storage=storage).get_trials()
        seconds = [
            (t.datetime_complete - t.datetime_start).total_seconds()
            for t in done
            if t.datetime_complete and t.datetime_start
        ]
    return len(done) / wall * 3600, statistics.median(seconds)


async def ui_lateness(epochs: int, sweep_epochs: int) -> list[float]:
    """The 20 ms timer's lateness while the app trains the book's model and a 2-job sweep runs."""
    import tui.app
    from tui.cli import app_options, parse

    with tempfile.TemporaryDirectory() as folder:
        storage = f"sqlite:///{Path(folder) / 'bench.db'}"
        sweep = subprocess.Popen(
            sweep_command(storage, sweep_epochs, 100, 2),
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(8)  # the sweep's workers have imported torch and are training
            argv = ["--epochs", str(epochs), "--seed", "0", "--pred-period", "1000"]
            app = tui.app.RnnTuiApp(app_options(parse(argv)))
            lateness: list[float] = []
            period = 0.02
            expected = [0.0]

            def tick() -> None:
                now = time.perf_counter()
                if expected[0] and app.run_control.status.state == "running":
                    lateness.append(max(0.0, now - expected[0]))
                expected[0] = now + period

            async with app.run_test(size=(100, 30)) as pilot:
                app.set_interval(period, tick)
                while app.run_control.status.state not in ("finished", "failed", "stopped"):
                    await asyncio.sleep(0.1)
                await pilot.press("ctrl+q")
        finally:
            sweep.terminate()
            sweep.wait(timeout=60)
    return sorted(lateness)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs per trial (default 20)")
    parser.add_argument("--trials-per-job", type=int, default=2)
    parser.add_argument("--ui-epochs", type=int, default=6, help="epochs the app trains while timed (0: skip)")
    parser.add_argument("--threads", type=int, help="torch threads per worker (default: cores ÷ jobs)")
    args = parser.parse_args()
    if args.threads:
        THREADS[:] = ["--threads", str(args.threads)]
    print(f"{os.cpu_count()} CPUs; book settings (rnn, 256 hidden, Adam), {args.epochs} epochs per trial")
    for jobs in (1, 2):
        per_hour, seconds = throughput(args.epochs, args.trials_per_job * jobs, jobs)
        print(f"jobs {jobs}: {per_hour:.1f} trials/hour ({seconds:.1f} s per trial, median)", flush=True)
    if args.ui_epochs:
        lateness = asyncio.run(ui_lateness(args.ui_epochs, args.epochs))
        p95 = lateness[int(0.95 * (len(lateness) - 1))]
        print(
            f"app training + sweep of 2 jobs: 20 ms timer lateness over {len(lateness)} ticks: "
            f"p50 {statistics.median(lateness) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
            f"max {lateness[-1] * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
