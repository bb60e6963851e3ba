"""In-app training speed versus headless, and how late a 20 ms UI timer fires while the app trains.

    python bench/app_responsiveness.py --epochs 12 --repeat 3   # the book's model, default app settings
    python bench/app_responsiveness.py --threads 1 --switch 0.005

Prints the median training seconds per epoch (EpochEnd.seconds, first epoch excluded as warm-up) headless
(`rnn-tui train --headless --metrics`, in its own process) and in the app (driven by Textual's pilot at
100×30, the same refresh code as on a terminal), their ratio, and the p50/p95/max lateness of a 20 ms
interval timer on the UI thread during in-app training. Then, in a real terminal (rnn-tui in a pty,
training), the time from pressing F5 to the status showing "pausing"/"paused", and from pressing it again
to "running".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RNN_TUI_CORPUS", str(ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip"))


def headless(epochs: int, threads: int | None) -> list[float]:
    """Seconds per epoch of `rnn-tui train --headless`, run as a user runs it: in its own process.

    Not in this process: a thread that has run torch's parallel ops keeps an OpenMP team alive, and with
    two teams on two cores libgomp stops spin-waiting, which slowed the app's trainer thread by 15-30 %
    on small ops (35 × addmm+tanh on 32×256: 2.5-2.8 ms alone, 3.2-3.7 ms once the main thread had
    used torch). The app's own main thread never runs them.
    """
    with tempfile.TemporaryDirectory() as folder:
        metrics = Path(folder) / "metrics.jsonl"
        command = [sys.executable, "-m", "tui.main", "train", "--headless", "--epochs", str(epochs)]
        command += ["--seed", "0", "--pred-period", "1000", "--metrics", str(metrics)]
        if threads:
            command += ["--threads", str(threads)]
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = [json.loads(line)["seconds"] for line in metrics.read_text().splitlines()]
    return seconds[1:]


def key_to_screen(presses: int, threads: int | None) -> dict[str, list[float]]:
    """Seconds from pressing F5 in a real terminal (rnn-tui in a pty, training) until the status shows it."""
    from bench.terminal import F5, Terminal

    command = [sys.executable, "-m", "tui.main", "--epochs", "1000", "--seed", "0"]
    if threads:
        command += ["--threads", str(threads)]
    env = {**os.environ, "TERM": "xterm-256color"}
    waits: dict[str, list[float]] = {"F5 → pausing/paused": [], "F5 → running": []}
    with Terminal(command, env) as terminal:
        if not terminal.watch({"training": re.compile(rb"epoch [1-9]\d*/1000")}, timeout=60):
            raise SystemExit("rnn-tui did not start training within 60 s")
        for _ in range(presses):
            for name, marker in (("F5 → pausing/paused", "● paus"), ("F5 → running", "● running")):
                time.sleep(0.3)  # let a few refreshes pass: the press lands at a random moment
                terminal.press(F5)
                seen = terminal.watch({name: marker.encode()}, timeout=5)
                waits[name].append(seen.get(name, float("inf")))
        terminal.quit()
    return waits


async def in_app(epochs: int, threads: int | None, switch: float | None) -> tuple[list[float], list[float]]:
    import tui.app
    from tui.cli import app_options, parse

    argv = ["--epochs", str(epochs), "--seed", "0", "--pred-period", "1000"]
    if threads:
        argv += ["--threads", str(threads)]
    app = tui.app.RnnTuiApp(app_options(parse(argv)))
    lateness: list[float] = []
    period = 0.02
    expected = [0.0]

    def tick() -> None:
        now = time.perf_counter()
        if expected[0] and app.run_control.status.state == "running":  # only time spent training counts
            lateness.append(max(0.0, now - expected[0]))
        expected[0] = now + period

    if switch is not None:
        sys.setswitchinterval(switch)
    async with app.run_test(size=(100, 30)) as pilot:
        app.set_interval(period, tick)
        while app.run_control.status.state not in ("finished", "failed", "stopped"):
            await asyncio.sleep(0.1)
        seconds = [e.seconds for e in app.run_control.epochs_seen][1:]
        await pilot.press("ctrl+q")
    return seconds, lateness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the app's default)")
    parser.add_argument("--switch", type=float, default=None, help="sys.setswitchinterval in the app run")
    parser.add_argument("--repeat", type=int, default=3, help="alternate headless and app runs this often")
    parser.add_argument("--presses", type=int, default=10, help="F5 presses timed in a real terminal (0: none)")
    args = parser.parse_args()
    import tui.app

    switch = args.switch if args.switch is not None else tui.app.SWITCH_INTERVAL_SECONDS
    # Headless as `rnn-tui train --headless` runs it: torch's own thread count unless --threads is given.
    # Alternating runs, so that the load of a shared machine weighs on both sides alike.
    head_seconds: list[float] = []
    app_seconds: list[float] = []
    ratios: list[float] = []  # one per round: the machine's speed drifts between rounds
    lateness: list[float] = []
    for _ in range(args.repeat):
        round_head = headless(args.epochs, args.threads)
        round_app, late = asyncio.run(in_app(args.epochs, args.threads, switch))
        ratios.append(statistics.median(round_head) / statistics.median(round_app))
        head_seconds += round_head
        app_seconds += round_app
        lateness += late
    head = statistics.median(head_seconds)
    app = statistics.median(app_seconds)
    lateness.sort()
    p95 = lateness[int(0.95 * (len(lateness) - 1))] if lateness else float("nan")
    print(f"threads {args.threads or 'default'}, switch interval {switch * 1000:g} ms, {os.cpu_count()} CPUs")
    print(
        f"headless {head:.3f} s/epoch, in app {app:.3f} s/epoch: in-app speed {statistics.median(ratios):.2f}× "
        f"headless (median of {len(ratios)} rounds; rounds {min(ratios):.2f}–{max(ratios):.2f}×)"
    )
    print(
        f"20 ms timer lateness over {len(lateness)} ticks: p50 {statistics.median(lateness) * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, max {lateness[-1] * 1000:.1f} ms"
    )
    if args.presses:
        for name, waits in key_to_screen(args.presses, args.threads).items():
            waits.sort()
            print(
                f"{name}, key press to screen (pty, training): median {statistics.median(waits) * 1000:.0f} ms, "
                f"max {waits[-1] * 1000:.0f} ms over {len(waits)} presses"
            )


if __name__ == "__main__":
    main()
