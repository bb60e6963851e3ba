"""Nothing outlives the server: the reaper process that kills what is left and removes the folders however the
server ends, the work directory's lock, and the startup sweep of folders an earlier server left.
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import os
import subprocess
import sys
from pathlib import Path

from engine.errors import RnnTuiError
from tui.served import REAPER_FUNCTIONS, reaper_prelude, remove_tree

# The reaper: started with the server, reads lines from it ("group N", "dir PATH", "done N", "undir PATH", "own
# PATH") and, once the server has gone however it went (its end of the pipe closes), kills the process groups still
# listed and removes the folders. Standard library only (tui.served's remove_tree, then this loop): it starts in a blink
# and cannot fail to import. The server says "undir" only once a folder is gone.
REAPER_LOOP = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups, folders = set(), set()
for line in sys.stdin:
    verb, _, arg = line.rstrip("\\n").partition(" ")
    if verb == "group": groups.add(int(arg))
    elif verb == "done": groups.discard(int(arg))
    elif verb in ("dir", "own"): folders.add(arg)
    elif verb == "undir": folders.discard(arg)
for group in groups:
    try: os.killpg(group, signal.SIGKILL)
    except OSError: pass
for folder in folders:
    remove_tree(folder)
"""
REAPER = reaper_prelude() + "\n".join(inspect.getsource(f) for f in REAPER_FUNCTIONS) + REAPER_LOOP
SESSION_PREFIX = "session-"  # a session's folder in the workdir: session-NUMBER-RANDOM


def claim_workdir(workdir: Path) -> int:
    """The work directory's lock (on the folder itself: no file left in it), held for the server's life (the kernel
    lets go when it ends, however it ends): one server per --workdir, so that its startup sweep removes no other
    server's live sessions. Returns the open folder's descriptor, kept open."""
    try:
        lock = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise RnnTuiError(f"cannot use --workdir {workdir}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(lock)
        raise RnnTuiError(f"--workdir {workdir} is in use by another rnn-tui serve ({exc.strerror or exc})") from exc
    return lock


def sweep_leftovers(workdir: Path) -> int:
    """Remove the session folders an earlier server left in workdir (one SIGKILLed with its reaper); how many."""
    removed = 0
    with contextlib.suppress(OSError), os.scandir(workdir) as entries:
        for entry in entries:
            if entry.name.startswith(SESSION_PREFIX) and entry.is_dir(follow_symlinks=False):
                removed += remove_tree(entry.path)
    return removed


class Reaper:
    """The reaper process, and the lines the server tells it (what to clean if the server dies)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None

    def start(self, own_workdir: Path | None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", REAPER], stdin=subprocess.PIPE, text=True, start_new_session=True
        )
        if own_workdir is not None:
            self.tell("own", str(own_workdir))

    def tell(self, verb: str, argument: object) -> None:
        """A line to the reaper (what to clean if this server dies)."""
        if self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.process.stdin.write(f"{verb} {argument}\n")
                self.process.stdin.flush()

    def close(self) -> None:
        """The server ends: the reaper cleans whatever is left (normally nothing) and exits."""
        if self.process is not None:
            with contextlib.suppress(OSError, ValueError):
                assert self.process.stdin is not None
                self.process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
