"""Corpus reading and the character vocabulary (the book's load_data_jay_lyrics, made deterministic)."""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from engine.errors import CorpusError

BOOK_MEMBER = "jaychou_lyrics.txt"
DEFAULT_CORPUS_NAME = "jaychou_lyrics.txt.zip"
CORPUS_ENV = "RNN_TUI_CORPUS"
# Reading the whole of a huge file would swallow memory; past this we refuse (max-chars > 0 streams).
MAX_CORPUS_BYTES = 64 * 1024 * 1024
# An explicit --max-chars on a file over that size keeps at most this many characters (the reader takes up to
# twice as many to allow for \r\n pairs): the same bound, in characters.
MAX_CORPUS_CHARS = MAX_CORPUS_BYTES // 2


SPACE_MARK = "␣"  # the corpus turns line breaks into spaces; a visible mark keeps columns and colours readable


def visible(text: str) -> str:
    return text.replace(" ", SPACE_MARK)


@dataclass(frozen=True)
class Vocab:
    """Sorted characters, so the same text always gives the same indices (the book's list(set()) does not)."""

    idx_to_char: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls(tuple(sorted(set(text))))

    _char_to_idx: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_char_to_idx", {c: i for i, c in enumerate(self.idx_to_char)})

    @property
    def char_to_idx(self) -> dict[str, int]:
        return self._char_to_idx

    def __len__(self) -> int:
        return len(self.idx_to_char)

    def __contains__(self, char: object) -> bool:
        return char in self.char_to_idx

    def unknown(self, text: str) -> list[str]:
        """Characters of text outside the vocabulary, each once, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.char_to_idx))

    def encode(self, text: str) -> list[int]:
        return [self.char_to_idx[c] for c in text]

    def decode(self, indices: Iterable[int]) -> str:
        return "".join(self.idx_to_char[i] for i in indices)


@dataclass(frozen=True)
class Corpus:
    """The preprocessed text, its vocabulary and where it came from."""

    text: str
    vocab: Vocab
    source: str  # what the user is told: a path, or a description of the built-in corpus

    @property
    def indices(self) -> list[int]:
        return self.vocab.encode(self.text)


def default_corpus_paths() -> list[Path]:
    """Where a user's corpus is looked for when no path is given, in order."""
    project_root = Path(__file__).resolve().parents[1]
    candidates = [Path.cwd() / "data" / DEFAULT_CORPUS_NAME, project_root / "data" / DEFAULT_CORPUS_NAME]
    return list(dict.fromkeys(candidates))


def find_corpus(path: str | None) -> Path | None:
    """The corpus path: the given one, else $RNN_TUI_CORPUS, else data/jaychou_lyrics.txt.zip; None if none exists.

    A path given explicitly (argument or environment) must exist: a typo should not silently
    train on something else.
    """
    for explicit, origin in ((path, "--corpus"), (os.environ.get(CORPUS_ENV), f"${CORPUS_ENV}")):
        if explicit:
            candidate = Path(explicit).expanduser()
            if not candidate.exists():
                raise CorpusError(f"corpus not found: {explicit} (from {origin})")
            return candidate
    for candidate in default_corpus_paths():
        if candidate.is_file():
            return candidate
    return None


def missing_corpus_message() -> str:
    return (
        f"no corpus found: put the book's {DEFAULT_CORPUS_NAME} in ./data/, or pass --corpus PATH, or set ${CORPUS_ENV}"
    )


def read_text(path: Path, max_chars: int) -> str:
    """The corpus text of a UTF-8 .txt file or a .zip, preprocessed as the book does.

    Newlines become spaces and the first max_chars characters are kept (0 keeps all).
    """
    if path.is_dir():
        raise CorpusError(f"corpus {path} is a directory, not a file")
    try:
        if zipfile.is_zipfile(path):
            raw = _read_zip(path, max_chars)
        elif path.suffix.lower() == ".zip":
            raise CorpusError(f"corpus {path} is not a valid zip file (damaged or truncated)")
        else:
            _check_size(path, path.stat().st_size, max_chars)
            with path.open("rb") as handle:
                raw = _read_stream(handle, path, max_chars)
    except OSError as exc:
        raise CorpusError(f"cannot read corpus {path}: {exc.strerror or exc}") from exc
    text = raw.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    if max_chars:
        text = text[:max_chars]
    if not text.strip():
        raise CorpusError(f"corpus {path} is empty")
    return text


def _check_size(path: Path, size: int, max_chars: int) -> None:
    if size <= MAX_CORPUS_BYTES:
        return
    if max_chars == 0:
        raise CorpusError(
            f"corpus {path} is {size / 2**20:.0f} MiB; with --max-chars 0 the limit is "
            f"{MAX_CORPUS_BYTES // 2**20} MiB (give --max-chars N to read only the start)"
        )
    if max_chars > MAX_CORPUS_CHARS:
        raise CorpusError(
            f"corpus {path} is {size / 2**20:.0f} MiB; from a file over {MAX_CORPUS_BYTES // 2**20} MiB at most "
            f"{MAX_CORPUS_CHARS:,} characters are kept, got --max-chars {max_chars:,}"
        )


def _read_stream(handle: IO[bytes], path: Path, max_chars: int) -> str:
    # A \r\n pair counts as one character once turned into a space, so read a little extra.
    reader = io.TextIOWrapper(handle, encoding="utf-8", errors="strict", newline="")
    try:
        return reader.read(max_chars * 2 + 1 if max_chars else -1)
    except UnicodeDecodeError as exc:
        raise CorpusError(f"corpus {path} is not UTF-8 text (bad byte at offset {exc.start})") from exc


def _read_zip(path: Path, max_chars: int) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            member = _pick_member(path, archive.namelist())
            _check_size(path, archive.getinfo(member).file_size, max_chars)
            with archive.open(member) as handle:
                return _read_stream(handle, path, max_chars)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:
        # EOFError and zlib.error: a truncated or corrupted deflate stream.
        raise CorpusError(f"corpus {path} is a damaged zip file ({exc})") from exc


def _pick_member(path: Path, names: Sequence[str]) -> str:
    if BOOK_MEMBER in names:
        return BOOK_MEMBER
    texts = [n for n in names if n.lower().endswith(".txt") and not n.startswith("__MACOSX/")]
    if len(texts) == 1:
        return texts[0]
    if not texts:
        raise CorpusError(f"corpus {path} holds no {BOOK_MEMBER} (nor any other .txt file)")
    raise CorpusError(f"corpus {path} holds several .txt files and no {BOOK_MEMBER}: {', '.join(texts[:5])}")


def load_corpus(path: Path, max_chars: int) -> Corpus:
    text = read_text(path, max_chars)
    return Corpus(text=text, vocab=Vocab.from_text(text), source=str(path))


def check_length(num_chars: int, batch_size: int, num_steps: int) -> None:
    """Both samplers need at least one batch: batch_size rows of num_steps inputs plus their targets."""
    needed = batch_size * (num_steps + 1)
    if num_chars < needed:
        raise CorpusError(
            f"corpus has {num_chars:,} characters; batch-size {batch_size} × (num-steps {num_steps} + 1) "
            f"needs at least {needed:,}"
        )
