"""Building a ready trainer from settings: find (or fetch) the corpus, resume a checkpoint. Shared by CLI and app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import SETTINGS, TrainConfig, held_out_on, preset_config, preset_note, reads_as
from engine.corpus import (
    TIME_MACHINE_SOURCE,
    Corpus,
    check_length,
    check_split,
    load_corpus,
    missing_corpus_message,
    run_corpus_path,
)
from engine.errors import CheckpointError, CorpusError
from engine.sampling import batches_per_epoch
from engine.trainer import Listener, Trainer

FALLBACK_PATH = Path(__file__).resolve().parent / "fallback" / "original_lyrics.txt"
FALLBACK_SOURCE = "built-in sample corpus (original text, not the book's lyrics)"
# Settings a resumed run may change: the live ones, where things are, and how long to train (Setting.resumable).
RESUMABLE_CHANGES = {s.name for s in SETTINGS if s.resumable or s.live}

Progress = Callable[[int, int], None]


@dataclass
class Session:
    config: TrainConfig
    corpus: Corpus
    trainer: Trainer
    notes: list[str] = field(default_factory=list)  # what the user should be told (fallback corpus, download)


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
    val_chars = config.val_chars if held_out_on(config) else 0
    held_out = len(corpus.held_out)
    # A corpus too short for one batch is told as such; one that only the held-out text makes too short, with both.
    check_length(len(corpus.text) + held_out, config.batch_size, config.num_steps, config.sampling)
    check_length(len(corpus.text), config.batch_size, config.num_steps, config.sampling, held_out)
    check_split(corpus, config.max_chars, val_chars, config.val_fraction, config.num_steps)
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
    from engine.download import download_corpus

    try:
        path = download_corpus(corpus_url, progress=progress)
    except CorpusError as exc:
        corpus = corpus_for(FALLBACK_PATH, config, FALLBACK_SOURCE)
        return corpus, [  # how to get the book's lyrics last: the app's status panel shows the last note
            *corpus.notes,
            f"{missing_corpus_message()}; downloading the book's corpus failed ({exc}).",
            f"Training on the {FALLBACK_SOURCE}. For the book's lyrics, get jaychou_lyrics.txt.zip "
            "from d2l-ai/d2l-zh (branch v1, data/) into ./data/.",
        ]
    corpus = corpus_for(path, config)
    return corpus, [f"downloaded the book's corpus to {path}", *corpus.notes]


def resume_config(checkpoint_config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """The checkpoint's settings with the allowed command-line changes; a structural change is an error."""
    clashes = [
        f"«{name}» {value}"
        for name, value in overrides.items()
        if name not in RESUMABLE_CHANGES and getattr(checkpoint_config, name) != value
    ]
    if clashes:
        raise CheckpointError(
            f"{', '.join(clashes)} does not fit the checkpoint; a resumed run keeps its model and data settings"
        )
    return checkpoint_config.with_changes(**{k: v for k, v in overrides.items() if k in RESUMABLE_CHANGES})


def check_resume(resume: str, overrides: dict[str, Any]) -> Any:
    """The checkpoint open_session(overrides, resume) would continue, or the CheckpointError/CorpusError it would
    raise, found without building a trainer: the app checks before it stops the run that is training.

    Building a trainer seeds torch process-wide, so this checks the weights' shapes on the meta device and the
    vocabulary against the corpus read afresh. A corpus that is not found locally is left to open_session.
    """
    from engine import checkpoint as checkpoints

    checkpoint = checkpoints.load(resume)
    config = resume_config(checkpoint.config, overrides)
    checkpoints.check_shapes(checkpoint)
    path = run_corpus_path(config.preset, config.corpus)
    if path is not None:
        corpus = corpus_for(path, config)
        checkpoints.check_vocab(checkpoint.vocab, corpus.vocab)
        checkpoints.check_progress(
            checkpoint, batches_per_epoch(config.sampling, len(corpus.text), config.batch_size, config.num_steps)
        )
    return checkpoint


def open_session(
    overrides: dict[str, Any] | TrainConfig,
    resume: str | None = None,
    corpus_url: str | None = None,
    listener: Listener | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    save_best: str | None = None,
) -> Session:
    """A trainer ready to run: overrides (the settings given explicitly) over their preset's, a whole TrainConfig as
    it is (the app's restart), or a checkpoint's settings with the changes a resumed run allows. notes: what to
    tell the user before training."""
    checkpoint = None
    notes: list[str] = []
    if resume:
        from engine import checkpoint as checkpoints

        checkpoint = checkpoints.load(resume)
        given = overrides if isinstance(overrides, dict) else {s.name: getattr(overrides, s.name) for s in SETTINGS}
        config = resume_config(checkpoint.config, given)
    elif isinstance(overrides, TrainConfig):
        config = overrides
    else:
        config = preset_config(overrides)
        note = preset_note(overrides)
        if note:
            notes.append(note)
    corpus, corpus_notes = resolve_corpus(config, corpus_url, progress)
    notes.extend(corpus_notes)
    trainer = Trainer(config, corpus, listener, threads=threads, save_best=save_best)
    if checkpoint is not None:
        trainer.restore(checkpoint)
        notes.append(f"resumed {resume} at {checkpoint.position(trainer.batches_per_epoch)}")
    return Session(config, corpus, trainer, notes)


def describe_held_out(config: TrainConfig, corpus: Corpus) -> str:
    """In one line, what the held-out figures are measured on and how (for a start-up line or a status panel)."""
    if not corpus.held_out or not config.val_chars:
        return "held-out evaluation off (val-chars 0)"
    from engine.evaluate import stream_length
    from engine.events import unseen_policy

    length = min(stream_length(config), len(corpus.held_out) - 1)
    return (
        f"held-out: {len(corpus.held_out):,} characters after the training text, read in stretches of {length} "
        f"from a zero state; {unseen_policy(corpus.vocab.has_unk)}"
    ) + (
        f"; test: the {len(corpus.test):,} characters after it, read once the run ends (no choice reads them)"
        if corpus.test
        else "; no test text"
    )
