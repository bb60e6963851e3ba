"""What a newcomer meets in the first minutes of `rnn-tui train --headless` (#29): blank early samples are explained
in one line, once; stdout and stderr reach one pipe in the order they were written. Real corpus."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli import BLANK_SAMPLES_NOTE
from tui.main import main


def test_blank_early_samples_are_explained_once(capsys: pytest.CaptureFixture[str]) -> None:
    """The book's model after one epoch writes spaces after its prefixes (greedy, seed 0): one line says why, under
    the samples, and not again when they are blank the next epoch too."""
    argv = ["train", "--headless", "--epochs", "2", "--pred-period", "1", "--pred-len", "10", "--threads", "1"]
    assert main([*argv, "--seed", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    samples = [i for i, line in enumerate(out) if line.startswith(" - ")]
    assert all(not out[i][3:].replace("分开", "").replace("不", "").strip() for i in samples), out  # blank
    notes = [i for i, line in enumerate(out) if line.startswith(BLANK_SAMPLES_NOTE)]
    assert len(notes) == 1 and notes[0] == samples[1] + 1, out  # once, right under the first epoch's samples
    assert out[notes[0]].endswith("and greedy sampling picks it every time)")


def test_stdout_and_stderr_reach_one_pipe_in_order(tmp_path: Path) -> None:
    """A command's stdout lines are flushed as they are written (line_by_line), so a line written to stderr after
    them comes after them in a shared pipe; block-buffered, it came first."""
    script = (
        "import sys\nfrom tui.main import main\n"
        "code = main(['shapes'])\n"
        "print('written after', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    unbuffered_off = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}  # as a user's
    done = subprocess.run(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, cwd=tmp_path,
        env={**unbuffered_off, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) > 2, done.stdout
    assert lines[-1] == "written after", lines
