"""A command whose reader goes away (`rnn-tui lessons | head -1`) ends quietly: no traceback reaches the user."""

from __future__ import annotations

import subprocess
import sys


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    # `true` leaves before the command writes anything: its first line meets a closed pipe, every time.
    command = f"{sys.executable} -m tui.main lessons | true"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
