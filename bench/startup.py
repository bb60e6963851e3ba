"""Start-up: time from launching `rnn-tui` in a terminal to its first painted frame and its first epoch.

    python bench/startup.py                      # 5 launches in a 100×30 pseudo-terminal
    python bench/startup.py --repeats 9 --threads 1

Each launch runs the real console script in a pty (as a person would in a terminal), reads what it
paints, strips the escape sequences and notes when the screen first shows the Status panel's title
(first frame), when it first says what it is doing while torch loads ("loading torch"), and when the
status first reads "epoch 1/" (first finished epoch). Then it presses ctrl+q and times the exit.
For scale, it also times a bare `python -c "import torch"`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip"
TARGET_FIRST_FRAME = 0.5
ESCAPES = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)")
MARKERS = {"first frame": b"Status", "says loading": b"loading torch", "first epoch": re.compile(rb"epoch 1/\d")}


def launch(command: list[str], env: dict[str, str], columns: int, rows: int, timeout: float) -> dict[str, float]:
    """Run command in a pty; return seconds from launch to each marker, and to exit after ctrl+q."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    started = time.perf_counter()
    child = subprocess.Popen(
        command, stdin=follower, stdout=follower, stderr=follower, env=env, start_new_session=True, close_fds=True
    )
    os.close(follower)
    seen: dict[str, float] = {}
    text = b""
    deadline = started + timeout
    try:
        while len(seen) < len(MARKERS) and time.perf_counter() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.01)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            now = time.perf_counter() - started
            text += ESCAPES.sub(b"", chunk)
            for name, marker in MARKERS.items():
                found = marker.search(text) if isinstance(marker, re.Pattern) else marker in text
                if name not in seen and found:
                    seen[name] = now
            text = text[-4096:]  # markers are short; keep the tail only
        quit_at = time.perf_counter()
        os.write(leader, b"\x11")  # ctrl+q
        while child.poll() is None and time.perf_counter() - quit_at < 10:
            if select.select([leader], [], [], 0.05)[0]:
                with contextlib.suppress(OSError):
                    os.read(leader, 65536)
        if child.poll() is not None:
            seen["exit after ctrl+q"] = time.perf_counter() - quit_at
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(leader)
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

    torch_import = []
    results: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True, env=env)
        torch_import.append(time.perf_counter() - started)
        for name, seconds in launch(command, env, columns, rows, args.timeout).items():
            results.setdefault(name, []).append(seconds)

    load = os.getloadavg()[0]
    shown = " ".join(command[len(launcher) :])
    print(f"# `rnn-tui {shown}` in a {columns}×{rows} pty, {args.repeats} launches, load {load:.2f}")
    print(f"{'from launch to':<28} {'median s':>9} {'max s':>7} {'seen':>5}")
    bare = '(python -c "import torch")'
    print(f"{bare:<28} {statistics.median(torch_import):>9.3f} {max(torch_import):>7.3f}")
    for name in (*MARKERS, "exit after ctrl+q"):
        values = results.get(name, [])
        if values:
            print(f"{name:<28} {statistics.median(values):>9.3f} {max(values):>7.3f} {len(values):>5}")
        else:
            print(f"{name:<28} {'never':>9}")
    frames = results.get("first frame", [])
    ok = len(frames) == args.repeats and statistics.median(frames) <= TARGET_FIRST_FRAME
    print(f"target (first frame ≤ {TARGET_FIRST_FRAME} s, median):", "met" if ok else "MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
