"""Fetch the book's corpus into a per-user cache when none is found locally.

Downloading is pooch's job (streaming to a temp file in the cache dir, sha256
check, atomic move); this module only picks the URL and cache dir, adapts
pooch's progress bar protocol to a plain callback, and turns every failure into
a one-line CorpusError. Deliberately free of torch/textual imports so the CLI
can fetch data without paying for them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import platformdirs
import pooch

from engine.errors import CorpusError

BOOK_CORPUS_URL = "https://raw.githubusercontent.com/d2l-ai/d2l-zh/v1/data/jaychou_lyrics.txt.zip"
BOOK_CORPUS_SHA256 = "3cfedd7d174111cdad5a27eaffaa6a2432a2842cf2590a03dd8a97610ea07043"
# The file name is fixed (not taken from the URL): the checksum pins the content,
# so a mirror given by $RNN_TUI_CORPUS_URL lands in the same cache entry.
CORPUS_FILENAME = "jaychou_lyrics.txt.zip"

CACHE_DIR_ENV = "RNN_TUI_CACHE_DIR"
CORPUS_URL_ENV = "RNN_TUI_CORPUS_URL"

# (connect, read) seconds: fail fast when offline, tolerate a slow link.
_TIMEOUT = (10.0, 30.0)
# Small chunks so a TUI progress bar moves on a ~50 KB file.
_CHUNK_SIZE = 4096

ProgressCallback = Callable[[int, int], None]


def corpus_cache_dir() -> Path:
    """Where downloaded corpora live: $RNN_TUI_CACHE_DIR, else the user cache dir."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("rnn-tui"))


class _CallbackError(Exception):
    """Carries an exception raised by the progress callback through pooch, so it
    is re-raised as is instead of being reported as a download failure."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class _ProgressAdapter:
    """Pooch's progressbar protocol (total/update/reset/close) -> callback(done, total).

    pooch's HTTPDownloader sets `.total` from Content-Length (0 if absent), calls
    `update(chunk_size)` per chunk (the nominal size, so it can overshoot), then
    `reset(); update(total); close()` to fill the bar. We clamp to `total` and
    ignore the final reset when the total is unknown, so `done` never goes back.
    """

    def __init__(self, callback: ProgressCallback) -> None:
        self.total = 0
        self._callback = callback
        self._done = 0
        self.last_done = -1

    def update(self, n: int) -> None:
        self._done += n
        done = min(self._done, self.total) if self.total else self._done
        if done != self.last_done:
            self.last_done = done
            try:
                self._callback(done, self.total)
            except Exception as exc:
                raise _CallbackError(exc) from exc

    def reset(self) -> None:
        if self.total:  # with an unknown total, update(0) follows: keep the count
            self._done = 0

    def close(self) -> None:
        """Nothing to release; the callback owner draws the bar."""


def _short(digest: str) -> str:
    return digest[:12] + "…"


def _reason(exc: BaseException) -> str:
    """A short, one-line reason for a failed download."""
    import requests  # pooch depends on it; imported lazily as pooch does

    if isinstance(exc, ValueError):
        # pooch's hash_matches: "... expected <alg:hash> but got <hash>. ..."
        m = re.search(r"expected (?:\w+:)?([0-9a-fA-F]+) but got ([0-9a-fA-F]+)", str(exc))
        if m:
            return f"checksum mismatch (expected {_short(m[1])}, got {_short(m[2])})"
        return "checksum mismatch"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}".rstrip()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS/SSL error"
    if isinstance(exc, requests.ConnectionError):
        # requests nests urllib3 errors; the errno text is the useful part,
        # e.g. "[Errno 111] Connection refused" or "[Errno -2] Name or service not known".
        m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
        return m[1].strip().lower() if m else "connection failed"
    if isinstance(exc, OSError) and exc.strerror:
        name = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror.lower()}{name}"
    first_line = (str(exc).splitlines() or [""])[0][:120]
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def sha256_of(path: Path) -> str:
    """A file's sha256 (hex), read in blocks: the downloaded corpus's check and a sweep study's corpus identity."""
    return str(pooch.file_hash(str(path), alg="sha256"))


def _matches(path: Path) -> bool:
    return sha256_of(path) == BOOK_CORPUS_SHA256


def download_corpus(
    url: str | None = None,
    progress: ProgressCallback | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Return the cached book corpus, downloading it (sha256-verified) if needed.

    url: defaults to $RNN_TUI_CORPUS_URL, else BOOK_CORPUS_URL.
    progress: called as progress(done_bytes, total_bytes_or_0) while bytes arrive,
      and once more with the final size. If it raises, the download stops, the
      temp file is removed, and the exception propagates unchanged (a way to cancel).
    cache_dir: defaults to corpus_cache_dir().
    On any failure nothing is left in the cache and CorpusError is raised.
    """
    url = url or os.environ.get(CORPUS_URL_ENV) or BOOK_CORPUS_URL
    cache_dir = Path(cache_dir) if cache_dir is not None else corpus_cache_dir()
    target = cache_dir / CORPUS_FILENAME

    # Checked here rather than by pooch so that a valid cache never touches
    # the network, and a wrong file is removed before (not after) a retry.
    if target.is_file():
        if _matches(target):
            return target
        try:
            target.unlink()
        except OSError as exc:
            raise CorpusError(f"cached corpus {target} is damaged and cannot be removed: {_reason(exc)}") from exc

    adapter = _ProgressAdapter(progress) if progress is not None else None
    downloader = pooch.HTTPDownloader(
        progressbar=adapter if adapter is not None else False,
        chunk_size=_CHUNK_SIZE,
        timeout=_TIMEOUT,
    )
    # pooch logs "Downloading data from ..." at INFO to stderr, which would
    # scribble over a TUI; quiet it for the duration of the call.
    logger = pooch.get_logger()
    old_level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        # pooch streams into a temp file inside cache_dir, checks the hash, and
        # only then moves it to `target`; on any error the temp file is deleted.
        pooch.retrieve(
            url,
            known_hash=f"sha256:{BOOK_CORPUS_SHA256}",
            fname=CORPUS_FILENAME,
            path=cache_dir,
            downloader=downloader,
        )
    except _CallbackError as exc:
        raise exc.original from None  # the caller's own exception, e.g. a cancel
    except Exception as exc:
        target.unlink(missing_ok=True)  # belt and braces: never leave a bad file
        raise CorpusError(f"download of {url} failed: {_reason(exc)}") from exc
    finally:
        logger.setLevel(old_level)

    if adapter is not None:
        size = target.stat().st_size
        if adapter.last_done != size:  # e.g. no Content-Length, or a short final chunk
            progress(size, size)  # type: ignore[misc]  # adapter is only made when progress is given
    return target
