"""The n-gram baselines of the run's corpus (engine/lab/ngram.py), computed once per corpus in a thread worker and
kept: the Perplexity plot draws them as reference lines, F10 lists them, the Lab's n-gram tab shows the table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.config import stream_length

if TYPE_CHECKING:
    from engine.data.corpus import Corpus
    from engine.lab.ngram import NgramTable
    from engine.trainer import Trainer

Key = tuple[int, int, int, int]
_tables: dict[Key, NgramTable] = {}


def corpus_key(trainer: Trainer) -> Key | None:
    """What the baselines of trainer's run depend on; None without held-out text."""
    return split_key(trainer.corpus, stream_length(trainer.config))


def split_key(corpus: Corpus, num_steps: int) -> Key | None:
    """What the baselines depend on: the training, held-out and test text (not where they were read from: the same text
    under another path has the same baselines) and the held-out stretches' length; None without held-out text."""
    if not corpus.held_out:
        return None
    text_hash = hash((corpus.text, corpus.held_out, corpus.test))
    return (len(corpus.text), len(corpus.held_out), num_steps, text_hash)


def cached(trainer: Trainer) -> NgramTable | None:
    key = corpus_key(trainer)
    return _tables.get(key) if key is not None else None


def compute(trainer: Trainer) -> NgramTable | None:
    """The table for trainer's corpus, from the cache or computed now (call from a thread: about a second)."""
    from engine.lab.ngram import ngram_table

    key = corpus_key(trainer)
    if key is None:
        return None
    if key not in _tables:
        corpus = trainer.corpus
        _tables[key] = ngram_table(
            corpus.vocab, corpus.text, corpus.held_out, stream_length(trainer.config), test_text=corpus.test
        )
    return _tables[key]


def reference_lines(table: NgramTable) -> list[tuple[str, float]]:
    """The lines the Perplexity plot draws, the best n-gram first (its title names as many as fit): the best and the
    bigram (labels "5-gram 137")."""
    best = table.best()[0]
    order = [best] + ([2] if best != 2 else [])
    values = dict(zip(table.n, table.held_out, strict=True))
    return [(f"{n}-gram {line_figure(values[n])}", values[n]) for n in order if n in values]


def line_figure(value: float) -> str:
    """A reference line's figure in few characters: 137 for the lyrics, 3.59 for The Time Machine (where a whole
    number would say 4 for 3.59)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
