"""What the teacher chose on `rnn-tui serve`'s command line, resolved once at start: the seats, their share of the
machine, the join code.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from engine.data.corpus import find_corpus, missing_corpus_message
from engine.errors import RnnTuiError
from engine.limits import available_memory
from tui.cli import train_argv

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # a join code to read off a board: no 0/o, 1/l/i
TOKEN_MIN = 8  # --token: 4 digits fell to guessing in about 6 s; 8 of 64 characters, with the throttle, do not
TOKEN_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
MIB = 2**20
SERVER_RESERVE = 1 << 30  # memory left to the server, the system and the teacher when seats are shared out
AUTO_SEAT_MEMORY = 1 << 30  # --max-sessions auto: a seat per GiB (a session at the defaults: see the README)
MIN_SEAT_MEMORY = 512 * MIB  # torch and the app alone take about 400 MiB


@dataclass
class ServeSettings:
    """What the teacher chose on the command line, resolved once at start."""

    host: str
    port: int
    public_url: str | None
    max_sessions: int
    workdir: Path
    own_workdir: bool  # created by us: removed at exit
    idle_seconds: float
    threads: int
    corpora: tuple[str, ...]
    app_flags: list[str] = field(default_factory=list)
    code: str | None = None  # the join code a page or websocket must bring; None: none asked (this machine only)
    log_file: Path | None = None
    seat_memory: int = 0  # bytes one session's process may use (its models are checked against what is left)
    seat_disk: int = 0  # bytes one session's files may take
    release_seconds: float = 0.0  # without input this long, a session saves, offers the download, and leaves
    reload_seconds: float = 0.0  # a tab's app waits this long after its tab goes, for the tab's reload
    first_key_seconds: float = 0.0  # a tab that sends no key or click this long after opening loses its seat
    seats_per_address: int = 0  # sessions one address may hold at once; 0: no limit
    lesson: str | None = None  # --lesson: every session runs it
    observations: str | None = None  # where the sessions append their lesson's observations (a CSV)
    unix_socket: str | None = None  # --unix-socket: listen there instead of host:port (behind jupyter-server-proxy)

    @property
    def base_path(self) -> str:
        """The path the browser reaches this server under ("" at the site's root; "/user/ada/rnn-tui" behind a hub
        that strips it before it forwards)."""
        url = self.public_url or ""
        return url if url.startswith("/") else urlsplit(url).path.rstrip("/")

    @property
    def path_only(self) -> bool:
        """--public-url is a path alone: the proxy keeps the browser's own host (JupyterHub), unknown here."""
        return bool(self.public_url) and str(self.public_url).startswith("/")

    def app_command(self) -> str:
        """The shell command that starts one app process (exec: the shell's pid is the app's, for the kill)."""
        return "exec " + shlex.join([sys.executable, "-m", "tui.main", *self.app_flags])


def join_code(token: str | None, host: str) -> str | None:
    """--token if given (checked), else a fresh code when the server can be reached from beyond this machine."""
    if token is not None:
        if len(token) < TOKEN_MIN or not set(token) <= TOKEN_ALPHABET:
            raise RnnTuiError(
                f"--token must be at least {TOKEN_MIN} characters, each a letter (a-z, A-Z), a digit or - _ "
                f"(got {len(token)} characters)"
            )
        return token
    if host in LOCAL_HOSTS:
        return None
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


def train_flags(args: argparse.Namespace) -> list[str]:
    """The `train` flags set in args, as command-line words, so every session gets exactly the teacher's."""
    # The corpus goes by $RNN_TUI_CORPUS: the form's field stays blank, not the server's path.
    return train_argv(argparse.Namespace(**{**vars(args), "corpus": None}))


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """Resolve the command line: the corpus and checkpoint become absolute (sessions run in their own
    directories), the torch threads are shared out, the work directory exists. RnnTuiError on a bad value."""
    corpus = find_corpus(args.corpus)
    if corpus is None:
        raise RnnTuiError(missing_corpus_message() + " (serve downloads nothing for its sessions)")
    args.corpus = str(corpus.resolve())
    if args.resume is not None:
        resume = Path(args.resume).expanduser()
        if not resume.is_file():
            raise RnnTuiError(f"checkpoint not found: {args.resume}")
        args.resume = str(resume.resolve())
    if getattr(args, "lesson", None):
        # Every seat runs the lesson and appends its observation to one CSV the teacher keeps (outside the sessions'
        # directories, which go with their tabs): --observations, else observations-LESSON.csv here.
        observations = Path(args.observations or f"observations-{args.lesson}.csv").expanduser()
        args.observations = str(observations.resolve())
    cores = os.cpu_count() or 1
    free_memory = available_memory() or 0  # 0, unreadable: auto_sessions counts by cores alone
    max_sessions = args.max_sessions
    if max_sessions in (None, "auto"):
        max_sessions = auto_sessions(cores, free_memory)
    if args.threads is None:  # sessions share the cores rather than each taking all of them
        args.threads = max(1, cores // max_sessions)
    own_workdir = args.workdir is None
    if own_workdir:
        workdir = Path(tempfile.mkdtemp(prefix="rnn-tui-serve-"))
    else:
        workdir = Path(args.workdir).expanduser()
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RnnTuiError(f"cannot use --workdir {args.workdir}: {exc.strerror or exc}") from exc
    seat_memory = args.seat_memory * MIB if getattr(args, "seat_memory", None) else None
    if seat_memory is None:
        seat_memory = max(MIN_SEAT_MEMORY, (free_memory - SERVER_RESERVE) // max_sessions)
    unix_socket = getattr(args, "unix_socket", None)
    public_url = args.public_url.rstrip("/") if args.public_url else None
    if public_url is not None and public_url.startswith("/") and unix_socket is None:
        # The hub's login stands before a socket only the proxy can reach: on a TCP port, any user of this machine
        # (or a page whose name was made to point here) would open sessions past it, and the host is not known.
        raise RnnTuiError(
            "--public-url as a path alone (behind JupyterHub's proxy) needs --unix-socket: on a TCP port anyone on "
            "this machine could open sessions past the hub's login"
        )
    seat_disk = args.seat_disk * MIB if getattr(args, "seat_disk", None) else None
    if seat_disk is None:
        seat_disk = max(16 * MIB, min(1024 * MIB, shutil.disk_usage(workdir).free // (2 * max_sessions)))
    return ServeSettings(
        host=args.host,
        port=args.port,
        public_url=public_url or None,
        max_sessions=max_sessions,
        workdir=workdir.resolve(),
        own_workdir=own_workdir,
        idle_seconds=args.idle_minutes * 60,
        threads=args.threads,
        corpora=(args.corpus,),
        app_flags=train_flags(args),
        code=join_code(getattr(args, "token", None), args.host),
        log_file=Path(args.log).expanduser() if getattr(args, "log", None) else None,
        seat_memory=seat_memory,
        seat_disk=seat_disk,
        release_seconds=getattr(args, "release_minutes", 0.0) * 60,
        reload_seconds=getattr(args, "reload_seconds", 0.0),
        first_key_seconds=getattr(args, "first_key_minutes", 0.0) * 60,
        seats_per_address=getattr(args, "seats_per_address", 0) or 0,
        lesson=getattr(args, "lesson", None),
        observations=getattr(args, "observations", None),
        unix_socket=str(Path(unix_socket).expanduser().absolute()) if unix_socket else None,
    )


def auto_sessions(cores: int, free_memory: int) -> int:
    """--max-sessions auto: one per CPU core and per AUTO_SEAT_MEMORY of the memory available beyond the server's
    reserve, whichever is fewer (at least one)."""
    by_memory = (free_memory - SERVER_RESERVE) // AUTO_SEAT_MEMORY if free_memory else cores
    return max(1, min(cores, by_memory))
