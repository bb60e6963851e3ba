"""rnn-tui in JupyterLab's launcher: jupyter-server-proxy's entry point (pyproject: jupyter_serverproxy_servers).

A user of a JupyterHub clicks "rnn-tui" in the launcher; their own Jupyter server starts `rnn-tui serve` for them
alone, behind the hub's login, and proxies /user/NAME/rnn-tui/ to it. How it is set up:
- a Unix socket in a folder only this user can open (jupyter-server-proxy makes it), not a TCP port: on a hub's
  shared machine any other user could reach a port on 127.0.0.1 past the hub's login;
- the proxy strips /user/NAME/rnn-tui before it forwards (absolute_url False) and keeps the browser's Host and
  Origin: the server is told the path alone (--public-url /user/NAME/rnn-tui/), its page takes its address from
  the browser, and the Origin check compares the websocket's Origin with that Host;
- a few seats (tabs) for the one user, sharing the CPU and memory limits the hub's spawner gave that user.
Needs the jupyter extra (pip install 'rnn-tui[jupyter]'); this module imports nothing of it.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NAME = "rnn-tui"  # the path under the user's server (/user/NAME/rnn-tui/) and the launcher's title
ICON = Path(__file__).parent / "icons" / "rnn-tui.svg"
SEATS = 2  # tabs one user may have open at once (two runs side by side)
START_SECONDS = 60  # the proxy waits this long for the server to answer (a cold start imports torch)
MIB = 2**20
RESERVE = 512 * MIB  # of the user's memory limit: JupyterLab, its kernels and the rnn-tui server itself
MIN_SEAT_MIB = 512  # torch and the app alone take about 400 MiB (tui.serve.settings' MIN_SEAT_MEMORY)


def spawner_limits(environ: Mapping[str, str]) -> list[str]:
    """--threads and --seat-memory from the limits the hub's spawner set (it passes them on as $CPU_LIMIT, cores,
    and $MEM_LIMIT, bytes): os.cpu_count() in a container is the host's, and a systemd or batch job's memory limit
    is not the cgroup rnn-tui reads. Nothing for a limit not set or not a number."""
    flags = []
    with contextlib.suppress(ValueError):
        cores = float(environ.get("CPU_LIMIT", ""))
        if math.isfinite(cores) and cores > 0:
            flags += ["--threads", str(max(1, int(cores) // SEATS))]
    with contextlib.suppress(ValueError):
        memory = int(environ.get("MEM_LIMIT", ""))
        if memory > 0:
            flags += ["--seat-memory", str(max(MIN_SEAT_MIB, (memory - RESERVE) // SEATS // MIB))]
    return flags


def command(environ: Mapping[str, str] = os.environ) -> list[str]:
    """`rnn-tui serve` for one user, with the proxy's placeholders ({unix_socket}, {base_url}) in it. This Python's
    own module, not `rnn-tui` on PATH: a single-user server's PATH may not hold the environment's scripts."""
    return [
        *(sys.executable, "-m", "tui.main", "serve"),
        *("--unix-socket", "{unix_socket}", "--public-url", "{base_url}" + NAME + "/"),
        *("--max-sessions", str(SEATS), *spawner_limits(environ)),
    ]


def server_process() -> dict[str, Any]:
    """jupyter-server-proxy's server process: the entry point (it calls this with no arguments, in the user's
    Jupyter server, whose environment holds the spawner's limits)."""
    return {
        "command": command(),
        "unix_socket": True,
        "absolute_url": False,
        "timeout": START_SECONDS,
        "new_browser_tab": True,
        # In the launcher's first row, "Notebook": JupyterLab draws an entry's own icon only there (elsewhere, blank).
        "launcher_entry": {"enabled": True, "title": NAME, "icon_path": str(ICON), "category": "Notebook"},
    }
