"""Served mode: what a visitor of `rnn-tui serve` may touch, as one small policy the app's dialogs go through.

The server (tui.serve) starts one app process per browser tab with these environment variables set. Then
every path a visitor types (save, load, CSV export, and any later file dialog) must name a file inside that
session's own directory, checked after resolving `..` and symlinks; the corpus is one the server allows.
Outside served mode every function here lets the path through unchanged: the terminal user owns the machine.
No Textual import: the policy is tested on its own (tests/test_served.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.corpus import TIME_MACHINE_PATH
from engine.errors import RnnTuiError
from engine.limits import MEMORY_SHARE_ENV  # bytes the whole process may use: engine.limits checks models against it
from tui.session_tree import tree_bytes

SESSION_DIR_ENV = "RNN_TUI_SERVED_DIR"  # set by the server: this session's directory (also the process's cwd)
CORPORA_ENV = "RNN_TUI_SERVED_CORPORA"  # os.pathsep-separated absolute paths the server allows as corpus
IDLE_ENV = "RNN_TUI_SERVED_IDLE"  # seconds without input after which training pauses; 0 = never
RELEASE_ENV = "RNN_TUI_SERVED_RELEASE"  # seconds without input after which the seat is given back; 0 = never
RELEASED_EXIT = 75  # the app's exit code when it gave its seat back for idleness (the server's log says so)
DISK_ENV = "RNN_TUI_SERVED_DISK"  # bytes the session's files may take; 0 = no quota
SERVED_NOTE = "served: files stay in this session"
SERVED_REFUSES = ("f12",)  # keys a served session refuses (F12's sweep starts processes): left out of its help
# Every refusal of a typed path says this and nothing else: not whether the place exists, is a folder, or its size.
STAY_INSIDE = "served: files stay in this session: type a file name, e.g. rnn-tui.ckpt"
NAME_MAX = 255  # bytes in one name (Linux's NAME_MAX)
PATH_MAX = 4095  # bytes in a whole path, less its final NUL (Linux's PATH_MAX)
MAX_DEPTH = 4  # folders a typed path may go down inside the session (a deep tree outlived its session: session_tree)


class OutsideSession(RnnTuiError):
    """A served visitor asked for a path (or corpus) outside what the session may touch."""


@dataclass(frozen=True)
class ServedMode:
    session_dir: Path  # resolved
    corpora: tuple[str, ...] = ()  # absolute paths
    idle_seconds: float = 0.0
    seat_memory: int = 0  # bytes; 0 = the machine's (engine.limits checks models against what is left of it)
    disk_quota: int = 0  # bytes; 0 = none
    release_seconds: float = 0.0  # without input this long, the session saves, offers the download and leaves

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ServedMode | None:
        """The served mode the server asked for, or None when the app runs in a terminal."""
        env = os.environ if environ is None else environ
        directory = env.get(SESSION_DIR_ENV)
        if not directory:
            return None
        corpora = tuple(p for p in env.get(CORPORA_ENV, "").split(os.pathsep) if p)
        try:
            idle = max(0.0, float(env.get(IDLE_ENV, "0") or 0))
        except ValueError:
            idle = 0.0
        numbers = [env.get(name, "0") for name in (MEMORY_SHARE_ENV, DISK_ENV)]
        memory, disk = (int(n) if n.isdigit() else 0 for n in numbers)
        try:
            release = max(0.0, float(env.get(RELEASE_ENV, "0") or 0))
        except ValueError:
            release = 0.0
        return cls(Path(directory).resolve(), corpora, idle, memory, disk, release)

    def environment(self) -> dict[str, str]:
        """The variables that put a child app process in this mode."""
        return {
            SESSION_DIR_ENV: str(self.session_dir),
            CORPORA_ENV: os.pathsep.join(self.corpora),
            IDLE_ENV: f"{self.idle_seconds:g}",
            DISK_ENV: str(self.disk_quota),
            RELEASE_ENV: f"{self.release_seconds:g}",
            **({MEMORY_SHARE_ENV: str(self.seat_memory)} if self.seat_memory else {}),
        }

    def used_bytes(self) -> int:
        """Bytes the session's files and folders take now (symlinks not followed; any depth; never raises)."""
        return tree_bytes(str(self.session_dir))

    def check_room(self, needed: int, replacing: str | None = None) -> None:
        """OutsideSession, one line with the numbers, when a file of about `needed` bytes (replacing the file at
        `replacing`, whose bytes come back) would take the session's files past its quota."""
        if not self.disk_quota:
            return
        used = self.used_bytes()
        if replacing is not None:
            with contextlib.suppress(OSError):
                used -= os.lstat(replacing).st_blocks * 512
        if used + needed > self.disk_quota:
            raise OutsideSession(
                f"served: this session's files may take {mib(self.disk_quota)}; they take {mib(used)} and this needs "
                f"about {mib(needed)}: save over an earlier file's name instead"
            )

    def confine(self, text: str) -> Path:
        """The absolute, resolved path of the file `text` names inside the session directory (see confine)."""
        return confine(text, self.session_dir)

    def check_corpus(self, corpus: str | None) -> None:
        """OutsideSession unless corpus is one the server allows (compared after resolving), a corpus shipped with
        rnn-tui (preset d2l-en's Time Machine), or blank: the preset's own, which in a session is the server's
        ($RNN_TUI_CORPUS, set by the server) or a shipped one: nothing is downloaded."""
        if not corpus:
            return
        allowed = [str(Path(p).resolve()) for p in (*self.corpora, str(TIME_MACHINE_PATH))]
        if str(Path(corpus).expanduser().resolve()) in allowed:
            return
        names = ", ".join(Path(p).name for p in self.corpora) or "none"
        raise OutsideSession(f"served: the corpus is set by the server ({names})")


def confine(typed: str, root: Path) -> Path:
    """The absolute, resolved path of the file `typed` names inside `root` (a resolved directory), or OutsideSession.

    Relative paths are taken from root. Refused: an empty name, NUL, a name or path longer than the file system
    takes, a leading `~` (never expanded: `~user/…` reaches any account's home, and accounts whose home is `/` reach
    everything), whatever resolves outside root or to root itself (`..`, an absolute path elsewhere, a symlink
    leading out, dangling ones included), and a file more than MAX_DEPTH folders down. The path is absolute so
    that nothing after this expands it again.
    """
    text = typed.strip()
    if not text:
        raise OutsideSession("type a file name")
    if "\0" in text:
        raise OutsideSession("a file name cannot contain a NUL character")
    try:
        encoded = os.fsencode(text)
    except UnicodeEncodeError:  # a lone surrogate: no file can have that name
        raise OutsideSession("that name has a character no file name can hold") from None
    if len(encoded) > PATH_MAX or any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        raise OutsideSession(f"that name is too long: at most {NAME_MAX} bytes a name")
    if text.startswith("~"):
        raise OutsideSession(STAY_INSIDE)
    candidate = Path(text)
    if not candidate.is_absolute():
        candidate = root / candidate
    # realpath follows every symlink it meets, dangling ones included, and folds `..` after them.
    resolved = Path(os.path.realpath(candidate))
    if resolved == root or not resolved.is_relative_to(root):
        raise OutsideSession(STAY_INSIDE)
    if len(resolved.relative_to(root).parts) > MAX_DEPTH + 1:
        raise OutsideSession(f"served: at most {MAX_DEPTH} folders deep, e.g. runs/rnn-tui.ckpt")
    return resolved


def mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def served_mode() -> ServedMode | None:
    return ServedMode.from_environment()


def user_path(text: str) -> str:
    """A path a person typed, ready to open: unchanged in a terminal; confined to the session when served (then
    absolute and resolved)."""
    mode = served_mode()
    return text.strip() if mode is None else str(mode.confine(text))


def shown(text: str) -> str:
    """A message about a session's file as a visitor should see it: the session's own directory (a server path)
    left out. Unchanged in a terminal."""
    mode = served_mode()
    if mode is None:
        return text
    return text.replace(str(mode.session_dir) + os.sep, "").replace(str(mode.session_dir), ".")
