"""Building a ready trainer from settings: find (or fetch) the corpus, resume a checkpoint. Shared by CLI and app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import LIVE_SETTINGS, TrainConfig
from engine.corpus import Corpus, check_length, find_corpus, load_corpus, missing_corpus_message
from engine.errors import CheckpointError, CorpusError
from engine.sampling import batches_per_epoch
from engine.trainer import Listener, Trainer

FALLBACK_PATH = Path(__file__).resolve().parent / "fallback" / "original_lyrics.txt"
FALLBACK_SOURCE = "built-in sample corpus (original text, not the book's lyrics)"
# Settings a resumed run may change besides the live ones: where things are, and how long to train.
RESUMABLE_CHANGES = {"epochs", "device", "corpus"} | set(LIVE_SETTINGS)

Progress = Callable[[int, int], None]


@dataclass
class Session:
    config: TrainConfig
    corpus: Corpus
    trainer: Trainer
    notes: list[str] = field(default_factory=list)  # what the user should be told (fallback corpus, download)


def resolve_corpus(
    config: TrainConfig, corpus_url: str | None = None, progress: Progress | None = None
) -> tuple[Corpus, list[str]]:
    """The corpus to train on: a local one, else the book's downloaded (checksum verified), else the built-in one."""
    path = find_corpus(config.corpus)
    if path is not None:
        return load_corpus(path, config.max_chars), []
    from engine.download import download_corpus

    try:
        path = download_corpus(corpus_url, progress=progress)
    except CorpusError as exc:
        corpus = load_corpus(FALLBACK_PATH, config.max_chars)
        corpus = Corpus(corpus.text, corpus.vocab, FALLBACK_SOURCE)
        return corpus, [
            f"{missing_corpus_message()}; downloading the book's corpus failed ({exc}).",
            f"Training on the {FALLBACK_SOURCE}. For the book's lyrics, get jaychou_lyrics.txt.zip "
            "from d2l-ai/d2l-zh (branch v1, data/) into ./data/.",
        ]
    return load_corpus(path, config.max_chars), [f"downloaded the book's corpus to {path}"]


def resume_config(checkpoint_config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """The checkpoint's settings with the allowed command-line changes; a structural change is an error."""
    clashes = [
        f"--{name.replace('_', '-')} {value}"
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
    path = find_corpus(config.corpus)
    if path is not None:
        corpus = load_corpus(path, config.max_chars)
        check_length(len(corpus.text), config.batch_size, config.num_steps)
        checkpoints.check_vocab(checkpoint.vocab, corpus.vocab)
        checkpoints.check_progress(
            checkpoint, batches_per_epoch(config.sampling, len(corpus.text), config.batch_size, config.num_steps)
        )
    return checkpoint


def open_session(
    overrides: dict[str, Any],
    resume: str | None = None,
    corpus_url: str | None = None,
    listener: Listener | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> Session:
    checkpoint = None
    if resume:
        from engine import checkpoint as checkpoints

        checkpoint = checkpoints.load(resume)
        config = resume_config(checkpoint.config, overrides)
    else:
        config = TrainConfig(**overrides)
    corpus, notes = resolve_corpus(config, corpus_url, progress)
    trainer = Trainer(config, corpus, listener, threads=threads)
    if checkpoint is not None:
        trainer.restore(checkpoint)
        notes.append(f"resumed {resume} at {checkpoint.position(trainer.batches_per_epoch)}")
    return Session(config, corpus, trainer, notes)
