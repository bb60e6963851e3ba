"""Files a run writes (checkpoints, metrics, CSV exports): checked before the run starts, written so that a
failure loses nothing.

check_output_target() is called for every output before anything trains: a bad target costs seconds, not a
run. A target may be new, or an existing file of its own kind ("ours": an rnn-tui checkpoint, an rnn-tui
metrics JSONL, an rnn-tui runs CSV, an empty file); any other existing file is replaced only with consent
(--force on the command line, a dialog in the app). The corpus is never an output, whatever the consent.

write_atomically() writes through a temporary file in the target's folder, renamed over the target at the
end: a failure or a signal leaves the previous file whole and no temporary file behind. save_with_rescue()
writes elsewhere (the working folder, then the temp folder) when the target fails anyway (a full disk, a
folder turned read-only), so trained weights are not lost to an output path.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from engine.errors import RnnTuiError

CHECKPOINT_FORMAT = "rnn-tui-checkpoint"  # engine.checkpoint.FORMAT (kept here: this module imports no torch)
# Test hook, for the fault-injection tests only: seconds to sleep inside a write, after its first chunk is on disk
# (a temporary file exists, half written), so a test can send a signal exactly "during a save".
PAUSE_ENV = "RNN_TUI_TEST_WRITE_PAUSE"
CHUNK_BYTES = 1 << 20

T = TypeVar("T")


class OutputError(RnnTuiError):
    """An output cannot be written there (a directory, the corpus, a read-only folder…), or writing it failed."""


class NotOursError(OutputError):
    """The target exists and is not a file of ours: it is replaced only with consent (--force, a dialog)."""

    def __init__(self, message: str, target: Path, noun: str, found: str) -> None:
        super().__init__(message)
        self.target, self.noun, self.found = target, noun, found

    @property
    def question(self) -> str:
        """The dialog's question: 'notes.txt exists and is not an rnn-tui checkpoint (…). Replace it?'"""
        return f"{self.target} exists and is not an {self.noun} ({self.found}). Replace it?"


@dataclass(frozen=True)
class OutputKind:
    noun: str  # what a file of this kind is called in messages: "rnn-tui checkpoint"
    recognise: Callable[[Path], bool]  # whether an existing, non-empty file is one of ours (cheap, never runs code)
    appends: bool = False  # written by appending (metrics) rather than replaced


def is_checkpoint_file(path: Path) -> bool:
    """An rnn-tui checkpoint, recognised without unpickling anything: torch.save writes a zip whose data.pkl holds
    the pickled payload, and ours names its format in it as a plain string."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith("data.pkl") and info.file_size < 64 * 2**20:
                    return CHECKPOINT_FORMAT.encode() in archive.read(info)
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False
    return False


def _first_line(path: Path, limit: int = 65536) -> str | None:
    try:
        with path.open("rb") as file:
            head = file.read(limit)
        return head.decode("utf-8").splitlines()[0] if head.strip() else ""
    except (OSError, UnicodeDecodeError, IndexError):
        return None


def is_metrics_file(path: Path) -> bool:
    """rnn-tui's metrics: JSON lines, each an object with the epoch and its perplexity."""
    line = _first_line(path)
    if line is None:
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "epoch" in record and "perplexity" in record


def is_runs_csv(path: Path) -> bool:
    """rnn-tui's runs export (engine.run_book.RunBook.to_csv): a header that starts with the epoch column."""
    line = _first_line(path)
    return line is not None and line.startswith("epoch,")


def is_optuna_sqlite(path: Path) -> bool:
    """An Optuna study database (a sweep's storage): SQLite, with Optuna's `studies` table. Opened read-only."""
    try:
        with path.open("rb") as file:
            if file.read(16) != b"SQLite format 3\0":
                return False
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = connection.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='studies'").fetchone()
        finally:
            connection.close()
    except (OSError, sqlite3.Error):
        return False
    return found is not None


KINDS: dict[str, OutputKind] = {
    "checkpoint": OutputKind("rnn-tui checkpoint", is_checkpoint_file),
    "metrics": OutputKind("rnn-tui metrics file", is_metrics_file, appends=True),
    "csv": OutputKind("rnn-tui runs CSV", is_runs_csv),
    "optuna-sqlite": OutputKind("Optuna study database", is_optuna_sqlite, appends=True),
}


def describe_file(path: Path) -> str:
    """What an existing file looks like, for a message: 'a 12 KiB text file', 'a 3 MiB zip file'."""
    try:
        size = path.stat().st_size
    except OSError:
        return "a file"
    amount = f"{size:,}-byte" if size < 1024 else f"{size / 1024:,.0f} KiB" if size < 2**20 else mebibytes(size)
    if zipfile.is_zipfile(path):
        what = "zip file"
    elif _first_line(path, 4096) is not None:
        what = "text file"
    else:
        what = "binary file"
    return f"a {amount} {what}"


def _why_not_writable(folder: Path) -> str:
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "is on a read-only file system"
    except OSError:
        pass
    return "is not writable (permission denied)"


def _nearest_existing(path: Path) -> Path:
    for ancestor in path.parents:
        if ancestor.exists():
            return ancestor
    return Path(path.anchor or ".")


def check_output_target(
    path: str | os.PathLike[str],
    kind: str,
    *,
    corpus: str | os.PathLike[str] | None = None,
    force: bool = False,
    flag: str | None = None,
) -> Path:
    """The target, expanded, if a run may write a file of `kind` there; else OutputError with a one-line message.

    Refused: an empty path, a directory, the corpus, a folder that cannot be created or written, and (unless
    force) an existing file that is not ours (NotOursError: the app asks, the CLI wants --force). Nothing is
    created or changed. `flag` ("--save") starts the message; without it the message starts with the path.
    """
    name = f"{flag} {path}" if flag else str(path)
    if not str(path).strip():
        raise OutputError(f"{flag or 'the path'} is empty: give a file name")
    try:
        return _check_output_target(path, name, KINDS[kind], corpus, force, flag)
    except OSError as exc:  # a name too long, a loop of symlinks: one line, never a traceback
        raise OutputError(f"{name}: {explain_os_error(exc)}") from exc


def _check_output_target(
    path: str | os.PathLike[str],
    name: str,
    spec: OutputKind,
    corpus: str | os.PathLike[str] | None,
    force: bool,
    flag: str | None,
) -> Path:
    # An absolute path (what a served session's confinement returns) is never expanded: expanduser leaves it alone.
    target = Path(path).expanduser()
    if target.is_dir() or str(path).endswith(os.sep):
        raise OutputError(f"{name} is a directory; give a file name inside it")
    if corpus is not None and target.exists():
        try:
            same = os.path.samefile(target, Path(corpus).expanduser())
        except OSError:
            same = False
        if same:
            raise OutputError(f"{name} is the corpus being trained on; choose another file")
    parent = target.parent
    folder = parent if parent.exists() else _nearest_existing(target)
    if not folder.is_dir():
        raise OutputError(f"{name}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        create = "" if folder == parent else f"cannot create {parent}: "
        raise OutputError(f"{name}: {create}{folder} {_why_not_writable(folder)}")
    if target.exists():
        if not target.is_file():
            raise OutputError(f"{name} exists and is not a regular file")
        if spec.appends and not os.access(target, os.W_OK):
            raise OutputError(f"{name} exists and is not writable")
        if not force and target.stat().st_size > 0 and not spec.recognise(target):
            found = describe_file(target)
            consent = "pass --force to replace it" if flag else "confirm to replace it"
            raise NotOursError(
                f"{name} exists and is not an {spec.noun} ({found}); choose another path, or {consent}",
                target,
                spec.noun,
                found,
            )
    return target


def check_distinct(targets: dict[str, str | None]) -> None:
    """Two outputs of one run must not be the same file: {'--save': path, '--metrics': path}."""
    seen: dict[str, str] = {}
    for flag, path in targets.items():
        if not path:
            continue
        key = os.path.abspath(os.path.expanduser(path))
        if key in seen:
            raise OutputError(f"{seen[key]} and {flag} name the same file {path}; give each its own")
        seen[key] = flag


def check_free_space(path: Path, needed: int, what: str, flag: str | None = None) -> None:
    """Refuse a target whose file system has less free space than the `needed` bytes the write will take."""
    folder = path.parent if path.parent.exists() else _nearest_existing(path)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:  # an existing file is replaced only once the new one is whole: its space does not count
        name = f"{flag} {path}" if flag else str(path)
        raise OutputError(
            f"{name}: {folder} has {mebibytes(free)} free; {what} needs about {mebibytes(needed)}; free space or "
            "choose another place"
        )


def mebibytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB" if size < 10 * 2**20 else f"{size / 2**20:,.0f} MiB"


def explain_os_error(exc: BaseException) -> str:
    """An OSError in a user's terms: 'the disk is full', 'the file system is read-only'…"""
    code = getattr(exc, "errno", None)
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "the operation is not permitted (an immutable file or folder?)",
        errno.ENOENT: "its folder does not exist (any more)",  # gone since the check, or never made
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EIO: "input/output error (the device may be gone)",
        errno.ENODEV: "the device is gone",
        errno.ENXIO: "the device is gone",
        errno.EFBIG: "the file is too large for this file system",
        errno.ENAMETOOLONG: "the name is too long for this file system",
        errno.ELOOP: "too many levels of symbolic links",
    }
    if code in reasons:
        return reasons[code]
    text = getattr(exc, "strerror", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def open_for_appending(path: str | os.PathLike[str], flag: str) -> IO[str]:
    """path opened to append text (its folder created, as a checkpoint's is); OutputError naming flag if it cannot."""
    target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "a", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {flag} {path}: {explain_os_error(exc)}") from exc


def write_atomically(path: str | os.PathLike[str], data: bytes | memoryview) -> None:
    """Write data to path through a temporary file in the same folder, renamed over it once whole and synced.

    A failure (OutputError, in the user's terms) or a signal (any BaseException) leaves the previous file whole and
    removes the temporary file. The new file gets a new file's usual permissions (mkstemp's are 0600).
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans(target)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"could not write {target}: {explain_os_error(exc)}") from exc
    pause = float(os.environ.get(PAUSE_ENV) or 0)
    try:
        try:
            with os.fdopen(handle, "wb") as file:
                view = memoryview(data)
                for start in range(0, max(len(view), 1), CHUNK_BYTES):
                    file.write(view[start : start + CHUNK_BYTES])
                    if pause and start == 0:
                        file.flush()
                        time.sleep(pause)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o666 & ~_umask())
            os.replace(temporary, target)
        except OSError as exc:
            raise OutputError(f"could not write {target}: {explain_os_error(exc)}") from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_orphans(target: Path) -> None:
    """Remove temporary files of target left by processes that no longer exist (killed with SIGKILL mid-write,
    which no handler can clean after). The writer's pid is in the name; a live writer's file is left alone."""
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        pid = leftover.name[len(target.name) + 2 :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):  # not ours to remove after all: it does not stop this write
                leftover.unlink(missing_ok=True)
        except OSError:  # alive, someone else's
            pass


def _umask() -> int:
    """The process's umask, read without setting it (os.umask sets it, racing other threads' file creation)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def rescue_paths(path: str | os.PathLike[str], own_folder: bool = False) -> list[Path]:
    """Where to write what could not be written to path (NAME.rescued-STAMP.ext): the working folder, then the temp
    folder; path's own folder only when own_folder (nothing was tried there yet)."""
    target = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{target.stem}.rescued-{stamp}{target.suffix}"
    places = [Path.cwd(), Path(tempfile.gettempdir())]
    own = target.parent.resolve()
    return [place / name for place in dict.fromkeys(places) if own_folder or place.resolve() != own]


def write_first(write: Callable[[Path], object], candidates: list[Path]) -> tuple[Path | None, list[str]]:
    """write() at the first candidate where it works: (that path, or None; why each one before it failed)."""
    tried: list[str] = []
    for candidate in candidates:
        try:
            write(candidate)
            return candidate, tried
        except OutputError as exc:
            tried.append(f"{candidate.parent}: {str(exc).rsplit(': ', 1)[-1]}")
    return None, tried


@dataclass(frozen=True)
class Rescued:
    """What save_with_rescue did: where the file is, and why it is not where asked (None if it is)."""

    path: Path
    failure: str | None


def save_with_rescue(write: Callable[[Path], object], path: str | os.PathLike[str]) -> Rescued:
    """write(path); if that fails with an OutputError, write(rescue) at the first rescue path that works.

    Raises OutputError naming every place tried when none worked. A signal (BaseException) is not caught.
    """
    target = Path(path)
    try:
        write(target)
        return Rescued(target, None)
    except OutputError as exc:
        failure = str(exc)
    rescued, tried = write_first(write, rescue_paths(target))
    if rescued is None:
        raise OutputError(f"{failure}; nor could it be written to {'; '.join(tried)}")
    return Rescued(rescued, failure)
