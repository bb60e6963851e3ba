"""Lessons: chapter 6's exercises as guided runs, as data (no UI: front ends show them); a class's CSV.

A Lesson is a preset (settings by name, applied through the settings declarations: Lesson.config, Lesson.argv), the
question it asks, what to watch while it trains, and an observation computed from the learner's own run when it
ends (engine.observations: LessonRun → Observation, one sentence with the run's numbers, and the same numbers by name
for a class's CSV).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.config import SettingValue, TrainConfig, preset_config, to_argv
from engine.errors import ConfigError, RnnTuiError
from engine.observations import (
    Figure,
    LessonRun,
    Observation,
    observe_carried_state,
    observe_cells,
    observe_generalise,
    observe_memorisation,
    observe_no_clipping,
    observe_one_hot,
    observe_temperature,
    observe_untrained_writer,
)


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


# ----- the lessons -----

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
