"""The data-size curve: test perplexity against training characters, a recurrent model's and the best counting model's
(engine/lab/ngram.py), on each shipped corpus (issue #28, item 6).

Neural language models beat counting "with enough data" (Mikolov et al. 2010; Kim et al. 2015); at the book's
10,000 characters counting wins. The curve measures where the two meet on this machine's corpora, or the trend
towards it: for each size, the first N characters of the corpus's training text train a model (the settings given,
over the corpus's own preset: d2l-zh for the lyrics, d2l-en for The Time Machine; few epochs by default) and fit
the counting models. The held-out and test texts are the same for every size (the corpus's tail shares, as with
--max-chars 0), and so is the vocabulary (the whole training text's: the same test characters are counted, and the
same ones left out as never seen, at every size), so the points are comparable. The model is read on the test text
at its best held-out epoch's weights, the counting model at the order the held-out text chooses: neither figure
chose anything.

Each point is cached on disk (the user cache dir, datasize/), keyed by the corpus's text, the size and every setting
that changes the figures, so a curve asked for again costs nothing; a cancelled one keeps its finished points.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.config import SETTINGS, TrainConfig, preset_config, stream_length
from engine.data.corpus import TIME_MACHINE_PATH, Corpus, load_corpus
from engine.errors import CorpusError

DEFAULT_SIZES = (5_000, 10_000, 20_000, 40_000, 0)  # 0: the whole training text
DEFAULT_EPOCHS = 10  # quick: minutes for both corpora on 2 cores; --epochs for more
DEFAULT_SEED = 0
CORPORA = {"lyrics": "d2l-zh", "timemachine": "d2l-en"}  # each corpus and the preset that reads it
# With the setting preset "whole": each corpus's generalising preset, at its own epochs and patience.
WHOLE = {"lyrics": "whole-zh", "timemachine": "whole-en"}
FAMILIES = ("book", "whole")  # what `lab datasize --preset` takes
CACHE_VERSION = 2
# Settings that change no figure of a point (how often samples print, where the corpus lies, the device).
NOT_KEYED = {"pred_period", "pred_len", "temperature", "prefixes", "corpus", "device", "max_chars"}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Point:
    train_chars: int
    model: float | None  # the model's test perplexity at its best held-out epoch (None: it trained no epoch)
    model_epoch: int | None  # that epoch
    counting: float  # the best counting model's test perplexity
    counting_order: int  # its n, chosen on held-out
    seconds: float  # what measuring the point took (training and counting), when it was measured
    cached: bool = False  # read from the cache this time


@dataclass(frozen=True)
class Curve:
    corpus: str  # "lyrics" or "timemachine"
    source: str
    preset: str
    settings: dict[str, Any]  # the model's settings, as trained
    held_out_chars: int
    test_chars: int
    points: tuple[Point, ...]

    def trend(self) -> str:
        """Where the model's curve crosses counting's, or how the ratio moves, in one sentence."""
        measured = [p for p in self.points if p.model is not None]
        if not measured:
            return "no model point measured"
        crossed = next((p for p in measured if p.model is not None and p.model < p.counting), None)
        if crossed is not None:
            return f"the model beats counting from {crossed.train_chars:,} training characters on (test text)"
        first, last = measured[0], measured[-1]
        ratio = [p.model / p.counting for p in (first, last) if p.model is not None]
        if len(measured) == 1:
            return f"counting wins: the model is ×{ratio[0]:.2f} counting's test perplexity"
        moving = "closing" if ratio[1] < ratio[0] else "not closing"
        return (
            f"counting wins at every size; the model's ratio to counting goes ×{ratio[0]:.2f} at "
            f"{first.train_chars:,} → ×{ratio[1]:.2f} at {last.train_chars:,} characters ({moving})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            "source": self.source,
            "preset": self.preset,
            "settings": self.settings,
            "held_out_chars": self.held_out_chars,
            "test_chars": self.test_chars,
            "points": [asdict(p) for p in self.points],
            "trend": self.trend(),
        }


def corpus_config(corpus: str, overrides: dict[str, Any]) -> TrainConfig:
    """A corpus's model settings: its preset's (the book's, or with preset "whole" the generalising one, WHOLE), then
    the settings given, DEFAULT_EPOCHS (not with "whole") and DEFAULT_SEED unless given;
    the whole text is read (the sizes cut its training text), held-out evaluation always on."""
    given = {k: v for k, v in overrides.items() if k not in ("preset", "corpus", "max_chars")}
    if overrides.get("preset") == "whole":  # the preset's own epochs (and patience): it was found at them
        config = preset_config({"seed": DEFAULT_SEED, **given, "preset": WHOLE[corpus]})
    else:
        config = preset_config({"epochs": DEFAULT_EPOCHS, "seed": DEFAULT_SEED, **given, "preset": CORPORA[corpus]})
    return config.with_changes(max_chars=0, val_chars=config.val_chars or 1, pred_period=10**6, pred_len=0)


def read_split(corpus: str, config: TrainConfig, lyrics: Path | None) -> Corpus:
    """The corpus's whole text split by the config's fractions: training, held-out, test."""
    if corpus == "timemachine":
        path: Path | None = TIME_MACHINE_PATH
    else:
        path = lyrics
    if path is None:
        raise CorpusError("the lyrics are not on this machine: set «corpus» (or $RNN_TUI_CORPUS) to their path")
    if not config.test_fraction:
        raise CorpusError("the data-size curve reads the test text: «test_fraction» must be above 0")
    return load_corpus(
        path, 0, config.val_chars, config.val_fraction, config.preset, test_fraction=config.test_fraction
    )


def point_key(split: Corpus, size: int, config: TrainConfig) -> str:
    settings = {s.name: getattr(config, s.name) for s in SETTINGS if s.name not in NOT_KEYED}
    text = hashlib.sha256("\0".join((split.text, split.held_out, split.test)).encode()).hexdigest()
    identity = json.dumps([CACHE_VERSION, text, size, settings], sort_keys=True, default=list)
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def measure_point(
    split: Corpus,
    size: int,
    config: TrainConfig,
    threads: int | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Point | None:
    """Train the model on the first size characters (0: all) and fit counting on them; None when cancelled."""
    from engine import events
    from engine.lab.ngram import ngram_table
    from engine.trainer import Trainer

    started = time.perf_counter()
    text = split.text[:size] if size else split.text
    vocab = split.vocab  # the whole training text's, for every size: the same targets counted at each point
    corpus = Corpus(text, vocab, split.source, split.held_out, (), split.test)
    table = ngram_table(vocab, text, split.held_out, stream_length(config), test_text=split.test)
    chosen = table.best_test()
    assert chosen is not None  # the split has a test text (read_split)

    def listen(event: events.Event) -> None:
        if isinstance(event, events.EpochEnd):
            if progress is not None:
                progress(f"{len(text):,} characters: epoch {event.epoch}/{config.epochs}")
            if cancelled is not None and cancelled():
                trainer.stop()

    trainer = Trainer(config, corpus, listen, threads=threads)
    trainer.run()
    if cancelled is not None and cancelled():
        return None
    figure = trainer.test_figure()
    return Point(
        len(text),
        figure.perplexity if figure else None,
        figure.epoch if figure else None,
        chosen[1],
        chosen[0],
        time.perf_counter() - started,
    )


def datasize_curve(
    corpus: str,
    overrides: dict[str, Any],
    sizes: Sequence[int] = DEFAULT_SIZES,
    lyrics: Path | None = None,
    cache_dir: Path | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Curve:
    """The curve of one corpus: a point per size (sizes past the training text's length are left out, 0 is all of it),
    from the cache where measured before. A cancelled curve has the points finished so far."""
    config = corpus_config(corpus, overrides)
    split = read_split(corpus, config, lyrics)
    wanted = sorted({min(size, len(split.text)) if size else len(split.text) for size in sizes})
    points: list[Point] = []
    for size in wanted:
        if cancelled is not None and cancelled():
            break
        key = point_key(split, size, config)
        path = cache_dir / f"{key}.json" if cache_dir is not None else None
        if path is not None and path.is_file():
            try:
                points.append(Point(**{**json.loads(path.read_text(encoding="utf-8")), "cached": True}))
                continue
            except (OSError, ValueError, TypeError):
                pass  # a damaged entry is measured again
        if progress is not None:
            progress(f"{corpus}: {size:,} characters")
        point = measure_point(split, size, config, threads, progress, cancelled)
        if point is None:
            break
        points.append(point)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(asdict(point)), encoding="utf-8")
            except OSError:
                pass  # the cache is a convenience: a full disk costs a recomputation next time, nothing else
    settings = {s.name: getattr(config, s.name) for s in SETTINGS if s.name not in NOT_KEYED}
    return Curve(
        corpus, split.source, config.preset, json.loads(json.dumps(settings, default=list)), len(split.held_out),
        len(split.test), tuple(points),
    )  # fmt: skip


def default_cache_dir() -> Path:
    from engine.data.download import corpus_cache_dir

    return corpus_cache_dir() / "datasize"


def describe_run(corpus: str, overrides: dict[str, Any], sizes: Sequence[int]) -> str:
    """What a curve runs, in one line: the model, its epochs, the sizes."""
    c = corpus_config(corpus, overrides)
    shown = ", ".join("all" if not s else f"{s:,}" for s in sizes)
    return (
        f"{corpus} (preset {c.preset}): {c.cell} {c.hidden}×{c.layers}, {c.optimizer} lr {c.lr:g}, {c.epochs} epochs, "
        f"seed {c.seed}, at {shown} training characters; held-out {c.val_fraction:g} and test {c.test_fraction:g} of "
        "the whole text, the same for every size"
    )
