"""Lessons: chapter 6's exercises as guided runs, as data and observation functions (no UI: front ends show them).

A Lesson is a preset (settings by name, applied through the settings declarations: Lesson.config, Lesson.argv), the
question it asks, what to watch while it trains, and an observation computed from the learner's own run when it
ends (LessonRun → Observation: one sentence with the run's numbers, and the same numbers by name for a class's CSV).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import SettingValue, TrainConfig, preset_config, to_argv
from engine.errors import ConfigError, RnnTuiError
from engine.events import TRAP_RATIO, EpochEnd, best_held_out, is_trap
from engine.limits import config_parameter_count, parameter_count

if TYPE_CHECKING:  # torch-backed: the lesson list loads without torch (the app lists lessons before it is in)
    from engine.timeline import SampleRecord

Figure = float | int | str | None


@dataclass(frozen=True)
class LessonRun:
    """What an observation reads: the learner's own run, as it ended."""

    config: TrainConfig
    history: tuple[EpochEnd, ...]
    timeline: tuple[SampleRecord, ...] = ()
    vocab_size: int = 0
    training_text: str = ""
    failure: str = ""  # the message of a run that stopped on an error (a divergence)
    # (order, test perplexity) of the best counting model on the run's split, its order chosen on held-out (#28's
    # yardstick); None where the front end has not computed it: the generalise observation then says so.
    counting: tuple[int, float] | None = None


@dataclass(frozen=True)
class Observation:
    lesson: str
    text: str  # one or two sentences naming the run's own numbers
    figures: tuple[tuple[str, Figure], ...] = ()  # the same numbers by name: a class's CSV columns

    def figure(self, name: str) -> Figure:
        return dict(self.figures).get(name)


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    exercise: str  # the book's exercise it turns into a run
    settings: Mapping[str, SettingValue]  # TrainConfig settings by name, over the book's (d2l-zh) defaults
    question: str
    watch: str  # what to look at while it trains
    observe: Callable[[LessonRun], Observation] = field(repr=False, compare=False)
    figure_names: tuple[str, ...] = ()  # the CSV columns observe fills, in order

    def config(self, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
        """The lesson's settings, with those given explicitly (flags, the form) over them."""
        return preset_config({**self.settings, **(overrides or {})})

    def overrides(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The settings a run of this lesson is started with: the lesson's, then those given explicitly."""
        return {**self.settings, **(given or {})}

    def argv(self) -> list[str]:
        """The lesson's settings as command-line words (engine.config.to_argv): what `--lesson NAME` stands for."""
        return to_argv(dict(self.settings))


# ----- formatting -----


def shown(value: float) -> str:
    """A perplexity or ratio as a learner reads it: 224, 1.02, 19,013, inf."""
    if not math.isfinite(value):
        return "inf"
    if value >= 1e6:
        return f"{value:.3g}"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def _no_epochs(lesson: str) -> Observation:
    return Observation(lesson, "no epoch finished, so there is nothing to observe yet: let the run train")


# ----- the observations -----


BLOW_UP = 10.0  # the last epoch's perplexity this many times the best: the run diverged, though it never stopped


def observe_no_clipping(run: LessonRun) -> Observation:
    history = run.history
    if "diverged" in run.failure:
        epoch = len(history) + 1
        clip = run.config.clip
        text = (
            f"your run diverged in epoch {epoch} with clip {clip:g}: "
            + run.failure.split(":", 1)[-1].split(";")[0].strip()
            + ". One step along an exploded gradient threw the weights off; restart with clip 1 and it trains."
        )
        before = history[-1].perplexity if history else None
        figures: tuple[tuple[str, Figure], ...] = (
            ("diverged_epoch", epoch),
            ("clip", clip),
            ("last", before),
            ("best", None),
            ("best_epoch", None),
        )
        return Observation("no-clipping", text, figures)
    if not history:
        return _no_epochs("no-clipping")
    best = min(history, key=lambda e: e.perplexity)
    last = history[-1]
    rises = [(later.perplexity / earlier.perplexity, later) for earlier, later in itertools.pairwise(history)]
    jump, at = max(rises, key=lambda r: r[0]) if rises else (1.0, last)
    clips = ", ".join(f"{c:g}" for c in sorted({e.clip for e in history}))
    blew_up = last.perplexity / best.perplexity >= BLOW_UP
    text = (
        f"{'your run blew up' if blew_up else 'no divergence'} in {_plural(len(history), 'epoch')} with clip "
        f"{clips}: training perplexity fell to {shown(best.perplexity)} at epoch {best.epoch}"
    )
    if best is not last:
        text += f" and ended at {shown(last.perplexity)}"
    if jump > 1:
        text += f"; its largest rise was ×{shown(jump)} into epoch {at.epoch}"
    if blew_up:
        text += ". Unclipped steps threw the weights off without a single loss large enough to stop the run."
    else:
        text += (
            ". A small model or learning rate can survive without clipping; the lesson's own (the book's model, SGD "
            "at lr 1, seed 1) diverged in epoch 9 when measured."
        )
    figures = (
        ("diverged_epoch", None),
        ("clip", last.clip),
        ("last", last.perplexity),
        ("best", best.perplexity),
        ("best_epoch", best.epoch),
    )
    return Observation("no-clipping", text, figures)


def _distinct_share(text: str) -> float:
    return len(set(text)) / len(text) if text else 0.0


EXCERPT = 16  # characters of a sample quoted in an observation


def observe_untrained_writer(run: LessonRun) -> Observation:
    from engine.lab.copies import index_for, sample_copy

    timeline = [r for r in run.timeline if r.samples]
    if not timeline:
        return Observation("untrained-writer", "no samples were drawn yet: let the run train an epoch")
    first, last = timeline[0], timeline[-1]
    prefix, text = first.samples[0]
    early = text[len(prefix) :]
    top = Counter(early).most_common(1)[0][0] if early else ""  # the first met of equals: the same every run
    late_prefix, late_text = last.samples[0]
    late = late_text[len(late_prefix) :]
    copy = sample_copy(index_for(run.training_text), late_text, len(late_prefix)).longest_copy
    text_out = (
        f"at epoch {first.epoch} your model wrote {_plural(len(set(early)), 'distinct character')} in {len(early)} "
        f"({top!r} {early.count(top)} times: {early[:EXCERPT]!r}…); at epoch {last.epoch}, {len(set(late))} in "
        f"{len(late)} ({late[:EXCERPT]!r}…), and its longest stretch copied verbatim from the lyrics was "
        f"{_plural(copy, 'character')}."
    )
    figures: tuple[tuple[str, Figure], ...] = (
        ("first_epoch", first.epoch),
        ("first_distinct", len(set(early))),
        ("first_top_count", early.count(top)),
        ("last_epoch", last.epoch),
        ("last_distinct", len(set(late))),
        ("last_longest_copy", copy),
    )
    return Observation("untrained-writer", text_out, figures)


def observe_carried_state(run: LessonRun) -> Observation:
    evaluated = [e for e in run.history if e.horizon_perplexity is not None]
    if not evaluated:
        return Observation("carried-state", "no held-out evaluation ran: keep held-out on (val chars > 0)")
    last = evaluated[-1]
    whole = last.horizon_perplexity or math.nan
    fresh = last.fresh_perplexity if last.fresh_perplexity is not None else math.nan
    ratio = whole / last.perplexity
    state = run.config.state
    text = (
        f"with state {state}, your training perplexity at epoch {last.epoch} was {shown(last.perplexity)}, but the "
        f"whole training text read once from a zero state scores {shown(whole)}: ×{shown(ratio)} (fresh, the cold "
        f"start alone: {shown(fresh)}). "
    )
    if is_trap(whole, last.perplexity):
        text += "From a zero state, as generation starts, it predicts far worse than with the state training gave it"
    else:
        text += f"No trap (yet): under ×{TRAP_RATIO:g}, the model reads as well from a zero state"
    text += "; rerun with state epoch to compare." if state == "carry" else "; compare with state carry's gap."
    figures: tuple[tuple[str, Figure], ...] = (
        ("state", state),
        ("epoch", last.epoch),
        ("train", last.perplexity),
        ("fresh", fresh),
        ("whole", whole),
        ("ratio", ratio),
    )
    return Observation("carried-state", text, figures)


def observe_memorisation(run: LessonRun) -> Observation:
    history = list(run.history)
    best = best_held_out(history)
    if best is None or best.val_perplexity is None:
        return Observation("memorisation", "no held-out evaluation ran: keep held-out on (val chars > 0)")
    last = history[-1]
    end = last.val_perplexity if last.val_perplexity is not None else math.nan
    worse = end / best.val_perplexity
    patience = 10
    saved = last.epoch - (best.epoch + patience)
    text = (
        f"your held-out perplexity was best at epoch {best.epoch} ({shown(best.val_perplexity)}) and "
        f"{shown(worse)}× worse at epoch {last.epoch} ({shown(end)}), while training perplexity went to "
        f"{shown(last.perplexity)}: the model learnt the lyrics by heart."
    )
    if saved > 0:
        text += f" Patience {patience} would have stopped at epoch {best.epoch + patience}, {saved} epochs sooner."
    figures: tuple[tuple[str, Figure], ...] = (
        ("best_epoch", best.epoch),
        ("best_held_out", best.val_perplexity),
        ("last_epoch", last.epoch),
        ("last_held_out", end),
        ("times_worse", worse),
        ("last_train", last.perplexity),
    )
    return Observation("memorisation", text, figures)


def observe_cells(run: LessonRun) -> Observation:
    history = run.history
    if not history:
        return _no_epochs("cells")
    config = run.config
    params = config_parameter_count(config, run.vocab_size)
    book = parameter_count("rnn", run.vocab_size, 256, 1)
    total = sum(e.seconds for e in history)
    seconds = total / len(history)
    speed = sum(e.chars for e in history) / total if total > 0 else 0.0
    best = best_held_out(list(history))
    text = (
        f"your {config.cell} of {config.hidden} hidden has {params:,} parameters (the book's rnn of 256: {book:,}); "
        f"an epoch took {seconds:.2f} s on average ({speed:,.0f} characters/s)"
    )
    if best is not None and best.val_perplexity is not None:
        text += f", and its held-out perplexity was best at epoch {best.epoch} ({shown(best.val_perplexity)})"
    text += "."
    figures: tuple[tuple[str, Figure], ...] = (
        ("cell", config.cell),
        ("hidden", config.hidden),
        ("parameters", params),
        ("seconds_per_epoch", seconds),
        ("best_held_out", best.val_perplexity if best is not None else None),
        ("best_epoch", best.epoch if best is not None else None),
    )
    return Observation("cells", text, figures)


def observe_temperature(run: LessonRun) -> Observation:
    from engine.lab.copies import index_for, sample_copy

    timeline = [r for r in run.timeline if r.samples]
    if not timeline:
        return Observation("temperature", "no samples were drawn yet: let the run train to its first report")
    index = index_for(run.training_text)
    by_temperature: dict[str, list[tuple[float, int]]] = {}
    for record in timeline:
        value = record.setting("temperature")
        name = "greedy" if value is None else f"{value:g}"
        for prefix, text in record.samples:
            generated = text[len(prefix) :]
            copy = sample_copy(index, text, len(prefix)).longest_copy
            by_temperature.setdefault(name, []).append((_distinct_share(generated), copy))
    parts = []
    for name, seen in by_temperature.items():
        share = sum(s for s, _ in seen) / len(seen)
        copy = max(c for _, c in seen)
        parts.append(f"at temperature {name}, {share:.0%} of sampled characters were distinct, longest copy {copy}")
    last = timeline[-1]
    last_value = last.setting("temperature")
    last_name = "greedy" if last_value is None else f"{last_value:g}"
    last_share = sum(s for s, _ in by_temperature[last_name]) / len(by_temperature[last_name])
    text = "; ".join(parts) + " (over every report of the run)."
    if len(by_temperature) == 1:
        text += " Change temp (a live setting) and watch the next samples."
    figures: tuple[tuple[str, Figure], ...] = (
        ("temperatures", " ".join(by_temperature)),
        ("last_temperature", last_name),
        ("last_distinct_share", last_share),
        ("last_longest_copy", max(c for _, c in by_temperature[last_name])),
    )
    return Observation("temperature", text, figures)


def observe_one_hot(run: LessonRun) -> Observation:
    config = run.config
    vocab = run.vocab_size
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[config.cell]
    inputs = vocab * config.hidden * gates
    outputs = config.hidden * vocab + vocab
    params = parameter_count(config.cell, vocab, config.hidden, config.layers)
    share = (inputs + outputs) / params
    seconds = sum(e.seconds for e in run.history) / len(run.history) if run.history else math.nan
    text = (
        f"your vocabulary has {vocab:,} characters, so each one-hot input is {vocab:,} numbers with a single 1: the "
        f"input weights ({inputs:,}) and the output layer ({outputs:,}) are {share:.0%} of the model's "
        f"{params:,} parameters, and grow with the vocabulary (the book's 10,000 characters have 1,027)"
    )
    text += f"; an epoch took {seconds:.2f} s." if run.history else "."
    figures: tuple[tuple[str, Figure], ...] = (
        ("vocab", vocab),
        ("input_weights", inputs),
        ("parameters", params),
        ("vocab_share", share),
        ("seconds_per_epoch", seconds if run.history else None),
    )
    return Observation("one-hot", text, figures)


# ----- the lessons -----

# From memorising to generalising (#28): a ladder of runs on the whole Time Machine, each a step over the one before,
# each run's test perplexity against counting's on the same text. (name, what the step adds, its settings.)
GENERALISE_STEPS: tuple[tuple[str, str, dict[str, SettingValue]], ...] = (
    ("the book's run", "the English edition's run: 10,000 letters", {"preset": "d2l-en"}),
    (
        "the whole text",
        "the whole Time Machine, no regulariser",
        {"preset": "whole-en", "io_dropout": 0.0, "embed": 0, "tie": "off", "schedule": "constant"},
    ),
    (
        "dropout",
        "dropout on the layer's input and output",
        {"preset": "whole-en", "embed": 0, "tie": "off", "schedule": "constant"},
    ),
    ("embedding and tying", "an embedding tied to the output layer", {"preset": "whole-en", "schedule": "constant"}),
    ("the preset", "the cosine schedule: the whole whole-en preset", {"preset": "whole-en"}),
)
# The settings the steps differ in: a run is a step when these are the step's.
STEP_SETTINGS = ("preset", "max_chars", "io_dropout", "embed", "tie", "schedule", "cell", "hidden", "layers")


def generalise_step(config: TrainConfig) -> int | None:
    """Which step of GENERALISE_STEPS a run's settings are (0-based); None for a run of the learner's own."""
    for index, (_name, _adds, settings) in enumerate(GENERALISE_STEPS):
        step = preset_config(dict(settings))
        if all(getattr(config, name) == getattr(step, name) for name in STEP_SETTINGS):
            return index
    return None


def step_flags(index: int) -> str:
    """The command-line flags of a step (those its lesson's settings do not give already)."""
    return " ".join(to_argv(dict(GENERALISE_STEPS[index][2]), always=("preset",)))


def observe_generalise(run: LessonRun) -> Observation:
    history = list(run.history)
    if not history:
        return _no_epochs("generalise")
    best = best_held_out(history)
    test = history[-1].test_perplexity
    index = generalise_step(run.config)
    step = (
        f"step {index + 1} of {len(GENERALISE_STEPS)}, {GENERALISE_STEPS[index][0]}"
        if index is not None
        else "a run of your own"
    )
    if test is None or best is None or best.val_perplexity is None:
        return Observation(
            "generalise",
            f"{step}: no test perplexity was reported; keep held-out and test text on (val chars, test fraction > 0)",
            (("step", step), ("test", None), ("best_held_out", None), ("best_epoch", None),
             ("counting_order", None), ("counting_test", None), ("times_counting", None)),
        )  # fmt: skip
    text = (
        f"{step}: test perplexity {shown(test)} (the best held-out epoch, {best.epoch}: {shown(best.val_perplexity)})"
    )
    order: int | None = None
    counting: float | None = None
    ratio: float | None = None
    if run.counting is not None:
        order, counting = run.counting
        ratio = test / counting
        verdict = "better than counting" if ratio < 1 else "worse than counting"
        text += f"; counting ({order}-gram) gets {shown(counting)} on the same test text: ×{shown(ratio)}, {verdict}."
    else:
        text += "; compare counting's test figure on the same split (rnn-tui lab ngram)."
    if index is not None and index + 1 < len(GENERALISE_STEPS):
        text += f" Next, {GENERALISE_STEPS[index + 1][1]}: {step_flags(index + 1)}."
    figures: tuple[tuple[str, Figure], ...] = (
        ("step", step),
        ("test", test),
        ("best_held_out", best.val_perplexity),
        ("best_epoch", best.epoch),
        ("counting_order", order),
        ("counting_test", counting),
        ("times_counting", ratio),
    )
    return Observation("generalise", text, figures)


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "no-clipping",
        "Train without clipping",
        "§6.4 exercise: run without gradient clipping; what happens?",
        {"optimizer": "sgd", "lr": 1.0, "clip": 0.0, "epochs": 60, "pred_period": 10, "seed": 1},
        "What does plain SGD at learning rate 1 do to an RNN when no one clips its gradients?",
        "the Perplexity plot and the Status line: a diverged run stops and says at which batch. Then set clip 1 "
        "(live) or restart with it, and compare.",
        observe_no_clipping,
        ("diverged_epoch", "clip", "last", "best", "best_epoch"),
    ),
    Lesson(
        "untrained-writer",
        "An untrained model writes",
        "§6.4 exercise: set the sampling period to 1; how does a barely trained model write?",
        {"pred_period": 1, "epochs": 40, "seed": 1},
        "What does a model with a high perplexity write, and when does it start to look like lyrics?",
        "the Samples panel after every epoch: one character repeated, then words, then whole lines of the lyrics "
        "(the Lab's Timeline tab scrubs through them).",
        observe_untrained_writer,
        ("first_epoch", "first_distinct", "first_top_count", "last_epoch", "last_distinct", "last_longest_copy"),
    ),
    Lesson(
        "carried-state",
        "The carried-state trap",
        "§6.3/6.5: consecutive sampling carries the hidden state across batches (and, in the book, epochs)",
        {"cell": "gru", "state": "carry", "clip": 0.0, "epochs": 100, "seed": 1},
        "Does a low training perplexity with a carried state mean the model predicts well from a cold start?",
        "the plot's training line against its fresh-state line (the same text from a zero state) and Status's whole "
        "text figure. Then restart with state epoch and compare the gap.",
        observe_carried_state,
        ("state", "epoch", "train", "fresh", "whole", "ratio"),
    ),
    Lesson(
        "memorisation",
        "Memorisation: held-out against training",
        "§6.5's run: 250 epochs on 10,000 characters (training perplexity 1.02)",
        {"epochs": 250, "seed": 0},
        "The book's perplexity reaches 1.02: has the model learnt to write lyrics, or learnt these lyrics?",
        "the held-out line turning up while the training line keeps falling, and the samples becoming verbatim "
        "lyrics. Patience (live) stops a run when held-out stops improving.",
        observe_memorisation,
        ("best_epoch", "best_held_out", "last_epoch", "last_held_out", "times_worse", "last_train"),
    ),
    Lesson(
        "cells",
        "RNN, GRU and LSTM at equal parameters",
        "§6.7/6.8 exercises: compare the running time (and results) of RNN, GRU and LSTM",
        {"cell": "lstm", "hidden": 106, "epochs": 50, "seed": 1},
        "At (nearly) the same number of parameters, which cell trains faster per epoch and which generalises best?",
        "seconds per epoch in the Status panel and the held-out line. This is an LSTM of 106 hidden (591,129 "
        "parameters); restart as a GRU of 131 or an RNN of 256 (both about 592,000) to compare.",
        observe_cells,
        ("cell", "hidden", "parameters", "seconds_per_epoch", "best_held_out", "best_epoch"),
    ),
    Lesson(
        "temperature",
        "Temperature",
        "sampling instead of the book's greedy prediction: softmax(logits / T)",
        {"temperature": 1.0, "epochs": 100, "pred_period": 10, "pred_len": 100, "seed": 1},
        "How does the temperature trade variety against copying the training text?",
        "the samples every 10 epochs; change temp (live: 0.5, 1.5, or blank for greedy) and compare the next ones.",
        observe_temperature,
        ("temperatures", "last_temperature", "last_distinct_share", "last_longest_copy"),
    ),
    Lesson(
        "one-hot",
        "One-hot inputs against the vocabulary's size",
        "§6.4: inputs are one-hot vectors as long as the vocabulary",
        {"max_chars": 0, "epochs": 20, "seed": 1},
        "What does a one-hot input cost when the vocabulary grows from the book's 1,027 characters to the whole "
        "corpus's?",
        "the Shapes preview (input width = vocabulary) and seconds per epoch against the book's run.",
        observe_one_hot,
        ("vocab", "input_weights", "parameters", "vocab_share", "seconds_per_epoch"),
    ),
    Lesson(
        "generalise",
        "From memorising to generalising",
        "#28: the book's run → the whole text → dropout → embedding and tying → the preset, each on the test text",
        {"preset": "whole-en", "seed": 0},
        "Can a recurrent model predict new text better than counting characters, and what does it take?",
        "the held-out line against the plot's counting lines, and the test figure when the run ends. Climb the "
        "ladder: --preset d2l-en (the book's run), then whole-en with --io-dropout 0 --embed 0 --tie off --schedule "
        "constant (the whole text), then add back dropout, the tied embedding and the schedule, one at a time.",
        observe_generalise,
        ("step", "test", "best_held_out", "best_epoch", "counting_order", "counting_test", "times_counting"),
    ),
)
LESSONS_BY_NAME: dict[str, Lesson] = {lesson.name: lesson for lesson in LESSONS}


def find_lesson(name: str) -> Lesson:
    """The lesson called name; ConfigError naming the lessons there are."""
    lesson = LESSONS_BY_NAME.get(name)
    if lesson is None:
        raise ConfigError(f"no lesson called {name!r}; the lessons are {', '.join(LESSONS_BY_NAME)}")
    return lesson


def observe(lesson: Lesson, run: LessonRun) -> Observation:
    return lesson.observe(run)


# ----- a class's observations, one CSV -----

CSV_FIELDS = ("when", "seat", "lesson", "observation")


class ObservationsFileError(RnnTuiError):
    """The class's CSV cannot take this row (another lesson's header, an unwritable file)."""


def csv_header(lesson: Lesson) -> list[str]:
    return [*CSV_FIELDS, *lesson.figure_names]


def append_observation(path: str | Path, lesson: Lesson, observation: Observation, seat: str) -> None:
    """Append one row to a class's CSV (the header first when the file is new or empty); one write, so the rows of
    seats finishing at the same time do not interleave. ObservationsFileError when the file holds another lesson's."""
    path = Path(path)
    header = csv_header(lesson)
    try:
        existing = path.read_text(encoding="utf-8").splitlines()[:1] if path.exists() else []
    except OSError as exc:
        raise ObservationsFileError(f"cannot read the observations file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:  # a binary file (the corpus's zip): not ours to append to
        raise ObservationsFileError(f"{path} is not a CSV of observations; give another file") from exc
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if not existing:
        writer.writerow(header)
    elif next(csv.reader(existing)) != header:
        raise ObservationsFileError(f"{path} collects another lesson's observations; give another file")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    figures = dict(observation.figures)
    values = [_csv_value(figures.get(name)) for name in lesson.figure_names]
    writer.writerow([when, seat, lesson.name, observation.text, *values])
    try:
        with path.open("a", encoding="utf-8") as file:
            file.write(buffer.getvalue())
    except OSError as exc:
        raise ObservationsFileError(f"cannot write the observations file {path}: {exc.strerror or exc}") from exc


def _csv_value(value: Figure) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
