"""What a lab view reads, loaded from a checkpoint: the model, its vocabulary and settings, and its run's text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine import checkpoint as checkpoints
from engine.config import TrainConfig
from engine.data.corpus import Corpus, Vocab, corpus_for, local_corpus
from engine.errors import CorpusError
from engine.events import EpochEnd
from engine.model import CharRNN

LAB_HELD_OUT_CHARS = 1_500  # held-out text read when the run itself had held-out evaluation off


@dataclass(frozen=True)
class Subject:
    model: CharRNN  # in eval mode; nobody trains it
    vocab: Vocab
    config: TrainConfig
    corpus: Corpus  # the run's training text and the held-out text that follows it
    history: tuple[EpochEnd, ...]
    label: str  # "book.ckpt, epoch 250"


def load_subject(path: str, corpus: str | None = None) -> Subject:
    """The checkpoint at path and the text its run read (or corpus, a path, instead). CheckpointError for a bad
    checkpoint; CorpusError when its corpus is not on this machine or has other characters than its vocabulary."""
    loaded = checkpoints.load(path)
    config = loaded.config
    if corpus is not None:
        config = config.with_changes(corpus=corpus)
    elif not config.corpus and Path(loaded.corpus).is_file():
        # Found by the lookup when it trained ($RNN_TUI_CORPUS, ./data): read that file, wherever the lookup looks now.
        config = config.with_changes(corpus=loaded.corpus)
    if not config.val_chars:
        config = config.with_changes(val_chars=LAB_HELD_OUT_CHARS)
    local = local_corpus(config)
    if local is None:
        raise CorpusError(
            f"the corpus this checkpoint trained on ({loaded.corpus}) is not on this machine: give its path as «corpus»"
        )
    read = corpus_for(local[0], config, local[1])
    checkpoints.check_vocab(loaded.vocab, read.vocab)
    return Subject(
        loaded.build_model(), loaded.vocab, config, read, tuple(loaded.history), f"{path}, {loaded.position()}"
    )
