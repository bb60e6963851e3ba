"""Start-up: time from launching `rnn-tui` in a terminal to its first painted frame and its first epoch.

    python bench/startup.py                      # 5 launches in a 100×30 pseudo-terminal
    python bench/startup.py --repeats 9 --threads 1

Each launch runs the real console script in a pty (as a person would in a terminal), reads what it
paints, strips the escape sequences and notes when the screen first shows the splash (painted before
Textual is imported), the app's own first frame (the Status panel's title), the status saying what it
is doing while torch loads ("loading torch"), and the first "epoch N/" with N ≥ 1 (first finished
epoch). Then it presses ctrl+q and times the exit. Interleaved with each launch, as baselines: a bare
`python -c "import torch"`, and the smallest Textual app (one bordered Static titled Status) — the
floor for any Textual app's first frame on this machine. A first, uncounted launch fills Python's
bytecode cache, as any earlier launch would have on a user's machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.terminal import Marker, Terminal  # noqa: E402  (bench/ scripts run as files: the root goes on the path)

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip"
TARGET_FIRST_FRAME = 0.5
MARKERS: dict[str, Marker] = {
    "splash": b"starting: loading the interface",
    "app's first frame": b"Status",
    "says loading torch": b"loading torch",
    "first epoch": re.compile(rb"epoch [1-9]\d*/\d"),  # an epoch can end between two refreshes: 2/3 counts
}
SMALLEST_TEXTUAL_APP = """
from textual.app import App
from textual.widgets import Static
class Smallest(App):
    def compose(self):
        panel = Static("hello")
        panel.border_title = "Status"
        panel.styles.border = ("round", "white")
        yield panel
Smallest().run()
"""


def launch(
    command: list[str],
    env: dict[str, str],
    columns: int,
    rows: int,
    timeout: float,
    markers: dict[str, Marker] = MARKERS,
) -> dict[str, float]:
    """Run command in a pty; return seconds from launch to each marker, and to exit after ctrl+q."""
    with Terminal(command, env, columns, rows) as terminal:
        seen = terminal.watch(markers, timeout)
        exit_seconds = terminal.quit()
        if exit_seconds is not None:
            seen["exit after ctrl+q"] = exit_seconds
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="passed to rnn-tui --threads")
    parser.add_argument("--size", default="100x30", help="terminal COLUMNSxROWS")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on a launch after this long")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)
    columns, rows = (int(n) for n in args.size.split("x"))

    script = shutil.which("rnn-tui", path=str(Path(sys.executable).parent))
    launcher = [script] if script else [sys.executable, "-m", "tui.main"]
    command = [*launcher, "--epochs", "3", "--seed", "0"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "RNN_TUI_CORPUS": str(args.corpus), "TERM": "xterm-256color"}
    env.pop("TEXTUAL", None)
    # A user's Python caches compiled bytecode; with PYTHONDONTWRITEBYTECODE set (as on these build machines)
    # every launch would compile the project's modules again (≈ 40 ms here). One uncounted launch fills the cache.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    launch(command, env, columns, rows, args.timeout)

    smallest = [sys.executable, "-c", SMALLEST_TEXTUAL_APP]
    launch(smallest, env, columns, rows, args.timeout, {"frame": b"Status"})
    torch_import = []
    smallest_frames = []
    results: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True, env=env)
        torch_import.append(time.perf_counter() - started)
        smallest_frames += [launch(smallest, env, columns, rows, args.timeout, {"frame": b"Status"})["frame"]]
        for name, seconds in launch(command, env, columns, rows, args.timeout).items():
            results.setdefault(name, []).append(seconds)

    load = os.getloadavg()[0]
    shown = " ".join(command[len(launcher) :])
    print(f"# `rnn-tui {shown}` in a {columns}×{rows} pty, {args.repeats} launches, load {load:.2f}")
    print(f"{'from launch to':<28} {'median s':>9} {'max s':>7} {'seen':>5}")
    for name, values in (('(python -c "import torch")', torch_import), ("(smallest Textual app)", smallest_frames)):
        print(f"{name:<28} {statistics.median(values):>9.3f} {max(values):>7.3f} {len(values):>5}")
    for name in (*MARKERS, "exit after ctrl+q"):
        values = results.get(name, [])
        if values:
            print(f"{name:<28} {statistics.median(values):>9.3f} {max(values):>7.3f} {len(values):>5}")
        else:
            print(f"{name:<28} {'never':>9}")
    for name in ("splash", "app's first frame"):
        frames = results.get(name, [])
        ok = len(frames) == args.repeats and statistics.median(frames) <= TARGET_FIRST_FRAME
        print(f"target ({name} ≤ {TARGET_FIRST_FRAME} s, median):", "met" if ok else "MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
