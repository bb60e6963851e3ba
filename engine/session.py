"""Building a ready trainer from settings: its corpus (engine.data.corpus.resolve_corpus finds or fetches it, reads and
splits it), a checkpoint resumed. Shared by CLI and app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.config import SETTINGS, TrainConfig, preset_config, preset_note
from engine.data.corpus import FALLBACK_SOURCE, Corpus, Progress, corpus_for, resolve_corpus, run_corpus_path
from engine.data.sampling import batches_per_epoch
from engine.errors import CheckpointError
from engine.events import Listener
from engine.presets import BOOK_PREFIXES
from engine.trainer import Trainer

# The built-in corpus's own sample prefixes, both in its training text (the book's 分开 is not in its vocabulary:
# no samples at all).
FALLBACK_PREFIXES = ("等你", "春天")
# Settings a resumed run may change: the live ones, where things are, and how long to train (Setting.resumable).
RESUMABLE_CHANGES = {s.name for s in SETTINGS if s.resumable or s.live}


@dataclass
class Session:
    config: TrainConfig
    corpus: Corpus
    trainer: Trainer
    notes: list[str] = field(default_factory=list)  # what the user should be told (fallback corpus, download)


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
    if corpus.source == FALLBACK_SOURCE and checkpoint is None and config.prefixes == BOOK_PREFIXES:
        config = config.with_changes(prefixes=FALLBACK_PREFIXES)
        own = " and ".join(FALLBACK_PREFIXES)
        notes.append(f"the built-in corpus's own sample prefixes: {own} (the book's are not in its vocabulary)")
    trainer = Trainer(config, corpus, listener, threads=threads, save_best=save_best)
    if checkpoint is not None:
        trainer.restore(checkpoint)
        notes.append(f"resumed {resume} at {checkpoint.position(trainer.batches_per_epoch)}")
    return Session(config, corpus, trainer, notes)


def describe_held_out(config: TrainConfig, corpus: Corpus) -> str:
    """In one line, what the held-out figures are measured on and how (for a start-up line or a status panel)."""
    if not corpus.held_out or not config.val_chars:
        return "held-out evaluation off (val-chars 0)"
    from engine.config import stream_length
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
