"""Corpus reading and the character vocabulary (the book's load_data_jay_lyrics, made deterministic)."""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from engine.config import TrainConfig, held_out_on
from engine.errors import CorpusError
from engine.presets import reads_as

BOOK_MEMBER = "jaychou_lyrics.txt"
DEFAULT_CORPUS_NAME = "jaychou_lyrics.txt.zip"
CORPUS_ENV = "RNN_TUI_CORPUS"
# Reading the whole of a huge file would swallow memory; past this we refuse (max-chars > 0 streams).
MAX_CORPUS_BYTES = 64 * 1024 * 1024
# The English edition's corpus, shipped with the package (public domain): what --preset d2l-en trains on.
TIME_MACHINE_PATH = Path(__file__).resolve().parent / "corpora" / "timemachine.txt"
TIME_MACHINE_SOURCE = f"The Time Machine (H. G. Wells), shipped with rnn-tui: {TIME_MACHINE_PATH}"
UNK = "<unk>"  # the English edition's token for a character outside the vocabulary
# What each preset does to the raw text: the Chinese edition turns newlines into spaces; the English edition keeps
# letters only, lower-cased, every other run of characters becoming one space.
PREPROCESSING = {
    "d2l-zh": "newlines become spaces",
    "d2l-en": "letters only, lower case (every run of other characters becomes one space)",
}
_NON_LETTERS = re.compile("[^A-Za-z]+")


def preprocess(text: str, preset: str = "d2l-zh") -> str:
    """The preset's preprocessing of raw text (see PREPROCESSING)."""
    if reads_as(preset) == "d2l-en":
        return _NON_LETTERS.sub(" ", text).lower()
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


# An explicit --max-chars on a file over that size keeps at most this many characters (the reader takes up to
# twice as many to allow for \r\n pairs): the same bound, in characters.
MAX_CORPUS_CHARS = MAX_CORPUS_BYTES // 2


SPACE_MARK = "␣"  # the corpus turns line breaks into spaces; a visible mark keeps columns and colours readable


def visible(text: str) -> str:
    return text.replace(" ", SPACE_MARK)


@dataclass(frozen=True)
class Vocab:
    """Sorted characters, so the same text always gives the same indices (the book's list(set()) does not).

    A vocabulary holding UNK (the English edition's) maps every character outside it to UNK; one without it (the
    Chinese edition's) refuses them: encode raises KeyError, and prefixes are checked against unknown().
    """

    idx_to_char: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str, unk: bool = False) -> Vocab:
        """The sorted characters of text, plus UNK when asked (sorted in with them, as the English edition does)."""
        chars = set(text) | ({UNK} if unk else set())
        return cls(tuple(sorted(chars)))

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

    @property
    def has_unk(self) -> bool:
        return UNK in self.char_to_idx

    def unknown(self, text: str) -> list[str]:
        """Characters of text the vocabulary cannot encode, each once, in order of appearance (none with UNK)."""
        if self.has_unk:
            return []
        return list(dict.fromkeys(c for c in text if c not in self.char_to_idx))

    def encode(self, text: str) -> list[int]:
        if self.has_unk:
            unk = self.char_to_idx[UNK]
            return [self.char_to_idx.get(c, unk) for c in text]
        return [self.char_to_idx[c] for c in text]

    def encode_unseen(self, text: str) -> tuple[list[int], int]:
        """Indices of text with UNSEEN (-1) for each character outside a vocabulary without UNK; and how many
        characters the vocabulary does not hold (mapped to UNK, or UNSEEN)."""
        lookup = self.char_to_idx
        fallback = lookup[UNK] if self.has_unk else UNSEEN
        indices = [lookup.get(c, fallback) for c in text]
        return indices, sum(1 for c in text if c not in lookup)

    def decode(self, indices: Iterable[int]) -> str:
        return "".join(self.idx_to_char[i] for i in indices)


UNSEEN = -1  # Vocab.encode_unseen's index for a character outside a vocabulary without UNK


@dataclass(frozen=True)
class Corpus:
    """The preprocessed training text, its vocabulary, the held-out text that follows it, and where it came from."""

    text: str  # the training text; the vocabulary is built from it alone
    vocab: Vocab
    source: str  # what the user is told: a path, or a description of the built-in corpus
    held_out: str = ""  # the held-out text ("" when held-out evaluation is off)
    notes: tuple[str, ...] = ()  # what the user should be told about the split (a short corpus, a short held-out)
    # The test text after the held-out text: reported once a run ends, never read by any choice (early stopping, the
    # best checkpoint, a sweep's ranking, Apply best read held-out only). "" when there is none.
    test: str = ""

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
    for explicit, origin in ((path, "«corpus»"), (os.environ.get(CORPUS_ENV), f"${CORPUS_ENV}")):
        if explicit:
            candidate = Path(explicit).expanduser()
            if not candidate.exists():
                raise CorpusError(f"corpus not found: {explicit} (from {origin})")
            check_regular_file(candidate)
            return candidate
    for candidate in default_corpus_paths():
        if candidate.is_file():
            return candidate
    return None


FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
}


def check_regular_file(path: Path) -> None:
    """Refuse anything but a regular file (a symlink to one is fine): /dev/zero never ends and a FIFO blocks
    the open, so either would hang the run with nothing said."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise CorpusError(f"cannot read corpus {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        kind = FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise CorpusError(f"corpus {path} is {kind}, not a file")


def run_corpus_path(preset: str, corpus: str | None) -> Path | None:
    """The corpus file a run with this preset and corpus setting reads, when it is on this machine (None: it would
    be downloaded). Preset d2l-en reads the shipped Time Machine unless a corpus is given explicitly."""
    if reads_as(preset) == "d2l-en" and not corpus:
        return TIME_MACHINE_PATH
    return find_corpus(corpus)


NO_CORPUS = "no corpus found: "  # how missing_corpus_message and the built-in corpus's first note begin


def status_note(notes: Sequence[str]) -> str:
    """The one note of a session the app's Status panel shows: the built-in corpus's short line when it trains on
    that (its details are the notes after it, in Samples), else the last."""
    return next((note for note in notes if note.startswith(NO_CORPUS)), notes[-1])


def missing_corpus_message() -> str:
    """Names the setting as «corpus»: each front end words it (engine.errors.worded: --corpus, the form's label)."""
    return (
        f"{NO_CORPUS}put the book's {DEFAULT_CORPUS_NAME} in ./data/, set «corpus» to its path, "
        f"or set ${CORPUS_ENV}"
    )


def read_text(path: Path, max_chars: int, preset: str = "d2l-zh", extra: int = 0) -> str:
    """The corpus text of a UTF-8 .txt file or a .zip, preprocessed as the preset's book does.

    d2l-zh: newlines become spaces; d2l-en: letters only, lower case. The first max_chars + extra characters of the
    preprocessed text are kept (max_chars 0 keeps all); extra, the held-out text, is not counted in the size checks.
    """
    limit = max_chars + extra if max_chars else 0
    check_regular_file(path)
    try:
        if zipfile.is_zipfile(path):
            raw = _read_zip(path, max_chars, preset, limit)
        elif path.suffix.lower() == ".zip":
            raise CorpusError(f"corpus {path} is not a valid zip file (damaged or truncated)")
        else:
            _check_size(path, path.stat().st_size, max_chars)
            with path.open("rb") as handle:
                raw = _read_stream(handle, path, limit, preset)
    except OSError as exc:
        raise CorpusError(f"cannot read corpus {path}: {exc.strerror or exc}") from exc
    text = raw if reads_as(preset) == "d2l-en" else preprocess(raw, preset)  # d2l-en's is applied while reading
    if limit:
        text = text[:limit]
    if not text.strip():
        kept = " (preset d2l-en keeps the letters A-Z only)" if reads_as(preset) == "d2l-en" else ""
        raise CorpusError(f"corpus {path} is empty{kept}")
    return text


def _check_size(path: Path, size: int, max_chars: int) -> None:
    if size <= MAX_CORPUS_BYTES:
        return
    if max_chars == 0:
        raise CorpusError(
            f"corpus {path} is {size / 2**20:.0f} MiB; with «max_chars» 0 the limit is "
            f"{MAX_CORPUS_BYTES // 2**20} MiB (give «max_chars» N to read only the start)"
        )
    if max_chars > MAX_CORPUS_CHARS:
        raise CorpusError(
            f"corpus {path} is {size / 2**20:.0f} MiB; from a file over {MAX_CORPUS_BYTES // 2**20} MiB at most "
            f"{MAX_CORPUS_CHARS:,} characters are kept, got «max_chars» {max_chars:,}"
        )


def _read_stream(handle: IO[bytes], path: Path, max_chars: int, preset: str = "d2l-zh") -> str:
    reader = io.TextIOWrapper(handle, encoding="utf-8", errors="strict", newline="")
    try:
        if reads_as(preset) == "d2l-en":
            return _read_letters(reader, max_chars)
        # A \r\n pair counts as one character once turned into a space, so read a little extra.
        return reader.read(max_chars * 2 + 1 if max_chars else -1)
    except UnicodeDecodeError as exc:
        raise CorpusError(f"corpus {path} is not UTF-8 text (bad byte at offset {exc.start})") from exc


def _read_letters(reader: io.TextIOBase, max_chars: int) -> str:
    """The d2l-en preprocessing applied chunk by chunk until max_chars characters are had (0: all).

    Why chunks: how much raw text gives max_chars letters is unknown in advance. A run of non-letters cut by a
    chunk boundary becomes two spaces, one of which is dropped, so the result equals preprocess(whole text).
    """
    pieces: list[str] = []
    have = 0
    while not max_chars or have < max_chars:
        chunk = reader.read(1 << 16)
        if not chunk:
            break
        processed = preprocess(chunk, "d2l-en")
        if pieces and pieces[-1].endswith(" ") and processed.startswith(" "):
            processed = processed[1:]
        pieces.append(processed)
        have += len(processed)
    return "".join(pieces)


def _read_zip(path: Path, max_chars: int, preset: str = "d2l-zh", limit: int | None = None) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            member = _pick_member(path, archive.namelist())
            _check_size(path, archive.getinfo(member).file_size, max_chars)
            with archive.open(member) as handle:
                return _read_stream(handle, path, max_chars if limit is None else limit, preset)
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


def load_corpus(
    path: str | Path,
    max_chars: int,
    val_chars: int = 0,
    val_fraction: float = 0.0,
    preset: str = "d2l-zh",
    source: str | None = None,
    test_fraction: float = 0.0,
) -> Corpus:
    """The corpus at path, preprocessed for the preset, split into training, held-out and test text (see split_text).

    With the defaults, no held-out text: the first max_chars characters, as the book reads them.
    """
    path = Path(path)
    test_chars = val_chars if test_fraction > 0 else 0
    text = read_text(path, max_chars, preset, extra=val_chars + test_chars)
    train, held_out, test, notes = split_text(text, max_chars, val_chars, val_fraction, test_fraction)
    vocab = Vocab.from_text(train, unk=reads_as(preset) == "d2l-en")
    return Corpus(train, vocab, source or str(path), held_out, tuple(notes), test)


def split_text(
    text: str, max_chars: int, val_chars: int, val_fraction: float, test_fraction: float = 0.0
) -> tuple[str, str, str, list[str]]:
    """(training text, held-out text, test text, notes) of a preprocessed text.

    The training text is the first max_chars characters (the book's); the held-out text is the val_chars that
    follow it, and the test text as many after those (test_fraction > 0; 0 turns the test text off). With max_chars
    0, or when the corpus ends within the first max_chars, the last test_fraction of the corpus is the test text and
    the val_fraction before it is held out (a note says so). val_chars 0 turns held-out and test text off.
    """
    if not val_chars:
        return (text[:max_chars] if max_chars else text), "", "", []
    if max_chars and len(text) > max_chars:
        end = max_chars + val_chars
        train, held_out = text[:max_chars], text[max_chars:end]
        test = text[end : end + val_chars] if test_fraction > 0 else ""
        notes = []
        if len(held_out) < val_chars:
            notes.append(
                f"the corpus ends {len(held_out):,} characters after the training text: holding out those "
                f"(val-chars {val_chars:,} asked)"
            )
        if test_fraction > 0 and len(test) < val_chars:
            notes.append(
                f"the corpus ends {len(test):,} characters after the held-out text: the test text is those "
                f"({val_chars:,} asked, as many as held out)"
            )
        return train, held_out, test, notes
    tested = round(len(text) * test_fraction)
    held = round(len(text) * val_fraction)
    end = len(text) - tested
    train, held_out, test = text[: end - held], text[end - held : end], text[end:]
    notes = []
    if max_chars:
        split = (
            f"holding out the next {held:,} (val-fraction {val_fraction:g}) and testing on the last {tested:,} "
            f"(test-fraction {test_fraction:g})"
            if tested
            else f"holding out the last {held:,} (val-fraction {val_fraction:g})"
        )
        notes.append(
            f"the corpus has {len(text):,} characters, not more than max-chars {max_chars:,}: training on the first "
            f"{len(train):,} and {split}"
        )
    return train, held_out, test, notes


def check_split(corpus: Corpus, config: TrainConfig) -> None:
    """Held-out settings that leave no held-out sequence raise CorpusError with the numbers (the training text is
    checked by check_length). One held-out sequence is num_steps + 1 characters: num_steps predictions."""
    if not held_out_on(config):
        return
    max_chars, val_chars, val_fraction, num_steps = (
        config.max_chars,
        config.val_chars,
        config.val_fraction,
        config.num_steps,
    )
    needed = num_steps + 1
    have = len(corpus.held_out)
    if have >= needed:
        return
    if max_chars and len(corpus.text) == max_chars and have < val_chars:
        how = f"the corpus ends {have:,} characters after the first «max_chars» {max_chars:,}"
    elif not max_chars or len(corpus.text) < max_chars:
        how = f"«val_fraction» {val_fraction:g} of {len(corpus.text) + have:,} characters"
    else:
        how = f"«val_chars» {val_chars:,}"
    raise CorpusError(  # «name»: each front end names the setting its own way (engine.errors)
        f"held-out text has {have:,} characters ({how}); one held-out sequence needs «num_steps» {num_steps} + 1 = "
        f"{needed:,}: hold out more, or set «val_chars» to 0 to turn held-out evaluation off"
    )


def check_length(
    num_chars: int, batch_size: int, num_steps: int, sampling: str = "consecutive", held_out: int = 0
) -> None:
    """The samplers need at least one batch: batch_size rows of num_steps inputs plus their targets (windows: one
    window of num_steps + 1, as its last batch may be partial). held_out: the characters held out, for the message."""
    needed = num_steps + 1 if sampling == "windows" else batch_size * (num_steps + 1)
    if num_chars < needed:
        after = f" after holding out {held_out:,}" if held_out else ""
        what = (
            f"one window of «num_steps» {num_steps} + 1"
            if sampling == "windows"
            else f"«batch_size» {batch_size} × («num_steps» {num_steps} + 1)"
        )
        name = "training text" if held_out else "corpus"
        raise CorpusError(f"{name} has {num_chars:,} characters{after}; {what} needs at least {needed:,}")


# ----- a run's corpus, from its settings: found (or fetched), read, split, checked -----

FALLBACK_PATH = Path(__file__).resolve().parent / "fallback" / "original_lyrics.txt"
FALLBACK_SOURCE = "built-in sample corpus (original text, not the book's lyrics)"

Progress = Callable[[int, int], None]  # a download's (bytes done, bytes in all)


def read_corpus(path: Path, config: TrainConfig, source: str | None = None) -> Corpus:
    """The corpus at path as config reads it (engine.config.VOCAB_SETTINGS), not yet checked against the sizes."""
    val_chars = config.val_chars if held_out_on(config) else 0
    return load_corpus(
        path, config.max_chars, val_chars, config.val_fraction, config.preset, source, config.test_fraction
    )


def corpus_for(path: Path, config: TrainConfig, source: str | None = None) -> Corpus:
    """The corpus at path as config reads it: the preset's preprocessing, training and held-out text, vocabulary.

    Raises CorpusError when the split leaves too little training text (one batch) or held-out text (one sequence
    of num-steps + 1), naming the numbers; the app calls this too, to check a setting before a restart.
    """
    corpus = read_corpus(path, config, source)
    held_out = len(corpus.held_out) + len(corpus.test)  # both are held out of training
    # A corpus too short for one batch is told as such; one that only the held-out text makes too short, with both.
    check_length(len(corpus.text) + held_out, config.batch_size, config.num_steps, config.sampling)
    check_length(len(corpus.text), config.batch_size, config.num_steps, config.sampling, held_out)
    check_split(corpus, config)
    return corpus


def local_corpus(config: TrainConfig) -> tuple[Path, str | None] | None:
    """(path, how to name it) of the corpus config trains on when it is on this machine; None when it would be
    downloaded. Preset d2l-en reads the shipped Time Machine unless a corpus is given explicitly."""
    path = run_corpus_path(config.preset, config.corpus)
    if path is None:
        return None
    shipped = reads_as(config.preset) == "d2l-en" and not config.corpus
    return path, TIME_MACHINE_SOURCE if shipped else None


def vocab_size_for(config: TrainConfig) -> int | None:
    """The size of the vocabulary a run with config would have (None when its corpus would be downloaded first).

    For the app's Shapes preview of settings not applied yet: another preset or corpus has another vocabulary. It
    depends on engine.config.VOCAB_SETTINGS only. Raises CorpusError when the corpus cannot be read.
    """
    local = local_corpus(config)
    if local is None:
        return None
    path, source = local
    return len(read_corpus(path, config, source).vocab)


def resolve_corpus(
    config: TrainConfig, corpus_url: str | None = None, progress: Progress | None = None
) -> tuple[Corpus, list[str]]:
    """The corpus to train on: a local one, else the book's downloaded (checksum verified), else the built-in one.

    Preset d2l-en trains on the shipped Time Machine unless a corpus is given explicitly ($RNN_TUI_CORPUS names
    the lyrics, so it is not looked at).
    """
    local = local_corpus(config)
    if local is not None:
        path, source = local
        corpus = corpus_for(path, config, source)
        return corpus, list(corpus.notes)
    from engine.data.download import download_corpus

    try:
        path = download_corpus(corpus_url, progress=progress)
    except CorpusError as exc:
        corpus = corpus_for(FALLBACK_PATH, config, FALLBACK_SOURCE)
        return corpus, [  # in order: which corpus (the app's Status shows this line: status_note), why, its split
            f"{NO_CORPUS}training on the built-in sample corpus",  # short: two lines of Status at most, whole
            f"downloading the book's corpus failed ({exc}). For the book's lyrics, get jaychou_lyrics.txt.zip from "
            f"d2l-ai/d2l-zh (branch v1, data/) into ./data/, set «corpus» to its path, or set ${CORPUS_ENV}.",
            *corpus.notes,
        ]
    corpus = corpus_for(path, config)
    return corpus, [f"downloaded the book's corpus to {path}", *corpus.notes]
