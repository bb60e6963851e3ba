"""`rnn-tui serve`'s parser and its checks: the server itself (textual-serve) is tui.serve, loaded only when the
command runs (it needs the [serve] extra)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from tui.cli.flags import add_train_arguments
from tui.cli.lines import fail


def add_serve_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the app to browsers (a classroom): one app process per tab, each confined to its own files",
        description="Serve the app to web browsers: each tab gets its own app process. The train flags given here "
        "are fixed for every session.",
    )
    group = serve.add_argument_group("server")
    group.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    group.add_argument("--port", type=int, default=8000, help="(default 8000)")
    group.add_argument(
        "--public-url",
        metavar="URL",
        help="the address students open, when served behind a reverse proxy (a path alone behind JupyterHub)",
    )
    group.add_argument(
        "--unix-socket", metavar="PATH", help="listen on this Unix socket instead of --host/--port (JupyterHub)"
    )

    def count_or_auto(text: str) -> int | str:
        return text if text == "auto" else int(text)

    count_or_auto.__name__ = "count (or auto)"  # argparse's "invalid … value" names it
    group.add_argument(
        "--max-sessions",
        type=count_or_auto,
        metavar="N",
        help="at most N tabs at once; auto (the default): one per CPU core and per GiB of memory available",
    )
    group.add_argument(
        "--seat-memory", type=int, metavar="MIB", help="memory one session may use (default: the machine's / N)"
    )
    group.add_argument(
        "--seat-disk", type=int, metavar="MIB", help="disk one session's files may take (default: free / 2N, ≤ 1024)"
    )
    group.add_argument(
        "--workdir", metavar="DIR", help="each session's files go in a fresh directory here (default: a temporary one)"
    )
    group.add_argument(
        "--idle-minutes",
        type=float,
        default=10.0,
        metavar="M",
        help="pause a session's training after M minutes without input; 0 never (default 10)",
    )
    group.add_argument(
        "--release-minutes",
        type=float,
        default=60.0,
        metavar="M",
        help="after M minutes without input a session saves, offers its weights as a download and gives its seat "
        "back; 0 never (default 60)",
    )
    group.add_argument(
        "--first-key-minutes",
        type=float,
        default=5.0,
        metavar="M",
        help="a tab that sends no key and no click within M minutes of opening gives its seat back; 0 never "
        "(default 5)",
    )
    group.add_argument(
        "--seats-per-address",
        type=int,
        default=0,
        metavar="N",
        help="at most N sessions from one address at once; 0 (the default): no limit (a class behind one NAT "
        "shares an address)",
    )
    group.add_argument(
        "--reload-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="a tab's app keeps running S seconds after its tab goes, so that a reload finds it as it was; 0: it ends "
        "with its tab (default 60)",
    )
    group.add_argument(
        "--token",
        metavar="CODE",
        help="the join code students type (default: none on 127.0.0.1; a fresh one, printed, on any other --host)",
    )
    group.add_argument("--log", metavar="FILE", help="also append each event (joined, left, refused…) as JSON lines")
    add_train_arguments(serve)
    serve.add_argument("--paused", action="store_true", help="open every session with training paused")


def check_serve_arguments(args: argparse.Namespace) -> None:
    if not 0 < args.port < 65536:
        fail(f"port must be between 1 and 65535, got {args.port}")
    if args.max_sessions not in (None, "auto") and args.max_sessions < 1:
        fail(f"max-sessions must be a whole number ≥ 1 or auto, got {args.max_sessions}")
    for flag in ("seat_memory", "seat_disk"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            fail(f"{flag.replace('_', '-')} must be a whole number of MiB ≥ 1, got {getattr(args, flag)}")
    if not (args.idle_minutes >= 0 and math.isfinite(args.idle_minutes)):
        fail(f"idle-minutes must be a number ≥ 0, got {args.idle_minutes:g}")
    if not (args.release_minutes >= 0 and math.isfinite(args.release_minutes)):
        fail(f"release-minutes must be a number ≥ 0, got {args.release_minutes:g}")
    if not (args.first_key_minutes >= 0 and math.isfinite(args.first_key_minutes)):
        fail(f"first-key-minutes must be a number ≥ 0, got {args.first_key_minutes:g}")
    if args.seats_per_address < 0:
        fail(f"seats-per-address must be a whole number ≥ 0, got {args.seats_per_address}")
    if not (args.reload_seconds >= 0 and math.isfinite(args.reload_seconds)):
        fail(f"reload-seconds must be a number ≥ 0, got {args.reload_seconds:g}")
    if args.public_url is not None and not args.public_url.startswith(("http://", "https://", "/")):
        fail(f"public-url must start with http://, https:// or / (a path), got {args.public_url!r}")
    for flag in ("save", "metrics"):
        value = getattr(args, flag)
        if value is not None and (Path(value).is_absolute() or ".." in Path(value).parts or value.startswith("~")):
            fail(f"--{flag} in serve is a file name inside each session's directory, got {value!r}")
