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
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from engine.data.corpus import TIME_MACHINE_PATH
from engine.errors import RnnTuiError
from engine.limits import MEMORY_SHARE_ENV  # bytes the whole process may use: engine.limits checks models against it

if TYPE_CHECKING:
    from engine.checkpoint import Checkpoint

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
MAX_DEPTH = 4  # folders a typed path may go down inside the session (a deep tree outlived its session: remove_tree)


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


def without_server_paths(checkpoint: Checkpoint) -> Checkpoint:
    """A served session's checkpoint as it may leave the server: the corpus it read named by its file name only (the
    server's path stayed in the pickled config and the corpus field), its config's corpus blank (the preset's own,
    which a served session reads from the server anyway)."""
    return replace(checkpoint, config=checkpoint.config.with_changes(corpus=None), corpus=Path(checkpoint.corpus).name)


def duration(seconds: float) -> str:
    """Seconds as a person says them: "30 s", "1.5 min", "60 min" (a 0.5-minute limit was told as "1 min")."""
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.3g} min"


def mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


SERVER_FOLDERS = re.compile(r"(?<![\w.~])/(?:[^/\s'\"]+/)+")  # the folders of an absolute path in a message


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
    text = text.replace(str(mode.session_dir) + os.sep, "").replace(str(mode.session_dir), ".")
    # Any other absolute path is the server's (the teacher's --resume, the corpus): its file name only.
    return SERVER_FOLDERS.sub("", text)


# ----- a session's folder: how much it takes and how it goes, at any depth, never raising -----
# os.walk and shutil.rmtree recurse once per level: at about a thousand levels (Python 3.11) they raise
# RecursionError, so a visitor's deep tree both slipped past the disk quota and survived its session's end. These
# walks are loops holding one open folder at a time and a list of names (no recursion, no descriptor per level, no
# path longer than one name), stepping over every OSError: a cleanup that cannot fail. Standard library only: the
# server's reaper (tui.serve.REAPER) runs their own text (REAPER_FUNCTIONS), so it starts in a blink and cannot fail
# to import.

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
MAX_ENTRIES = 1_000_000  # a walk stops counting after this many entries (a quota is long passed by then)


def _open(name: str, parent: int | None) -> int | None:
    try:
        return os.open(name, _DIRECTORY, dir_fd=parent)
    except OSError:
        return None


def _names(folder: int) -> list[tuple[str, bool]]:
    """(name, is a folder) for each entry of the open folder; [] if it cannot be read."""
    try:
        with os.scandir(folder) as entries:
            found = []
            for entry in entries:
                try:
                    found.append((entry.name, entry.is_dir(follow_symlinks=False)))
                except OSError:
                    found.append((entry.name, False))
            return found
    except OSError:
        return []


def tree_bytes(top: str) -> int:
    """Bytes that files and folders under `top` take on disk (symlinks not followed); 0 if `top` cannot be read."""
    root = _open(top, None)
    if root is None:
        return 0
    total, seen = 0, 0
    stack = [root]  # open folders still to read: each is read whole, then closed, before its children are opened
    try:
        while stack:
            folder = stack.pop()
            try:
                with contextlib.suppress(OSError):
                    total += os.fstat(folder).st_blocks * 512
                for name, is_folder in _names(folder):
                    seen += 1
                    if seen > MAX_ENTRIES:
                        return total
                    if is_folder:
                        child = _open(name, folder)
                        if child is not None:
                            stack.append(child)
                    else:
                        with contextlib.suppress(OSError):
                            total += os.lstat(name, dir_fd=folder).st_blocks * 512
            finally:
                os.close(folder)
    finally:
        for folder in stack:
            with contextlib.suppress(OSError):
                os.close(folder)
    return total


def remove_tree(top: str) -> bool:
    """Remove `top` and everything under it, at any depth; True once it is gone (False: something stayed, e.g. a
    folder without write permission). Never raises. Holds one open folder at a time: it goes down to a folder with
    no subfolder, empties it, climbs back through `..` and removes it by name."""
    try:
        info = os.lstat(top)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        with contextlib.suppress(OSError):
            os.unlink(top)
        return not os.path.lexists(top)
    folder = _open(top, None)
    if folder is None:
        return False
    names: list[str] = []  # the path from top down to the open folder
    stuck: set[tuple[int, int]] = set()  # folders that would not go: not entered again
    steps = 0
    try:
        while steps < 10 * MAX_ENTRIES:
            steps += 1
            below = None
            for name, is_folder in _names(folder):
                if not is_folder:
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=folder)
                    continue
                with contextlib.suppress(OSError):  # an empty one goes at once
                    os.rmdir(name, dir_fd=folder)
                    continue
                try:
                    child_info = os.lstat(name, dir_fd=folder)
                except OSError:
                    continue
                if (child_info.st_dev, child_info.st_ino) not in stuck:
                    below = name
                    break
            if below is not None:
                child = _open(below, folder)
                if child is not None:
                    os.close(folder)
                    folder = child
                    names.append(below)
                    continue
                with contextlib.suppress(OSError):
                    child_info = os.lstat(below, dir_fd=folder)
                    stuck.add((child_info.st_dev, child_info.st_ino))
                continue
            # This folder has nothing left that can go: climb out and remove it (or mark it stuck).
            if not names:
                break
            with contextlib.suppress(OSError):
                here = os.fstat(folder)
                stuck.add((here.st_dev, here.st_ino))
            parent = _open("..", folder)
            if parent is None:
                break
            os.close(folder)
            folder = parent
            with contextlib.suppress(OSError):
                os.rmdir(names[-1], dir_fd=folder)
            names.pop()
    finally:
        with contextlib.suppress(OSError):
            os.close(folder)
    with contextlib.suppress(OSError):
        os.rmdir(top)
    return not os.path.lexists(top)


REAPER_FUNCTIONS = (_open, _names, remove_tree)  # what the reaper runs, after reaper_prelude()


def reaper_prelude() -> str:
    """The imports and constants REAPER_FUNCTIONS need, as the start of a script."""
    return (
        "from __future__ import annotations\nimport contextlib, os, stat\n"
        f"_DIRECTORY = {_DIRECTORY}\nMAX_ENTRIES = {MAX_ENTRIES}\n"
    )
