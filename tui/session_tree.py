"""A served session's folder: how much it takes and how it goes, for trees of any depth, without ever raising.

`os.walk` and `shutil.rmtree` recurse once per level: at about a thousand levels (Python 3.11) they raise
RecursionError, so a visitor's deep tree both slipped past the disk quota and survived its session's end. Here
both walks are loops that hold one open folder at a time and a list of names (no recursion, no file descriptor
per level, no path longer than one name), and every OSError is stepped over: a cleanup that cannot fail.

Standard library only, and no import of the rest of rnn-tui: the server's reaper (tui.serve.REAPER) runs this file's
own text, so that it starts in a blink and can never fail to import.
"""

from __future__ import annotations

import contextlib
import os
import stat

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
