"""Peak resident memory of a headless training run: `rnn-tui train --headless` in a subprocess.

    python bench/memory.py                       # the book's 250 epochs, RNN
    python bench/memory.py --cell lstm --epochs 50

Reports the child's peak RSS (wait4's ru_maxrss for the child, the kernel's own high-water
mark) next to that of a bare `python -c "import torch"`, so the engine's own share is visible, and the
RSS sampled every 0.2 s from /proc at a few points of the run (to see growth, if any).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip"
TARGET_MIB = 400


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_of(command: list[str], env: dict[str, str]) -> tuple[float, list[float], float]:
    """Run command; return its peak RSS in MiB, the sampled RSS series, and the wall seconds."""
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[float] = []
    # waitid(WNOWAIT) sees the exit without reaping, so wait4 can then return this child's own rusage.
    while os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        value = rss_mib(child.pid)
        if value is not None:
            samples.append(value)
        time.sleep(0.2)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{child.stderr.read().decode()}")
    child.stderr.close()
    return max(usage.ru_maxrss / 1024, max(samples, default=0.0)), samples, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=250)
    parser.add_argument("--cell", choices=("rnn", "gru", "lstm"), default="rnn")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)

    env = {**os.environ, "RNN_TUI_CORPUS": str(args.corpus)}
    script = shutil.which("rnn-tui", path=str(Path(sys.executable).parent))
    launcher = [script] if script else [sys.executable, "-m", "tui.main"]
    train = [*launcher, "train", "--headless", "--epochs", str(args.epochs), "--cell", args.cell, "--seed", "0"]
    base_peak, _, _ = peak_of([sys.executable, "-c", "import torch"], env)
    peak, samples, seconds = peak_of(train, env)
    print(f"# peak RSS of `{' '.join(['rnn-tui', *train[len(launcher) :]])}` ({seconds:.0f} s)")
    print(f"{'process':<34} {'peak MiB':>9}")
    bare = 'python -c "import torch"'
    print(f"{bare:<34} {base_peak:>9.1f}")
    print(f"{'rnn-tui train --headless':<34} {peak:>9.1f}")
    if samples:
        points = [samples[min(len(samples) - 1, round(f * (len(samples) - 1)))] for f in (0.1, 0.25, 0.5, 0.75, 1.0)]
        print("RSS at 10/25/50/75/100% of the run (MiB): " + " ".join(f"{p:.0f}" for p in points))
    print(f"target (≤ {TARGET_MIB} MiB):", "met" if peak <= TARGET_MIB else f"MISSED ({peak:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
