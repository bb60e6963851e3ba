"""A lesson's end, shared by the command line and the app: the learner's run as a LessonRun, its observation, and the
row for the class's CSV (engine/lessons.py computes everything; this only gathers the run and names the seat)."""

from __future__ import annotations

import csv
import dataclasses
import getpass
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import RnnTuiError, first_line
from engine.lessons import CSV_FIELDS, Lesson, LessonRun, Observation, append_observation, csv_header
from tui.served import SESSION_DIR_ENV

if TYPE_CHECKING:  # torch-backed
    from engine.trainer import Trainer


class RowQuota:
    """The rows one served seat may add to the class's CSV: PER_MINUTE in any minute, TOTAL in all."""

    PER_MINUTE = 2
    TOTAL = 20

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.written: list[float] = []

    def refuse(self) -> str | None:
        """Why this row is not written (one line), or None: then it is counted as written."""
        now = self.clock()
        if len(self.written) >= self.TOTAL:
            return f"served: this seat has added its {self.TOTAL} rows to the class's observations; no more are written"
        if sum(now - t < 60 for t in self.written) >= self.PER_MINUTE:
            return (
                f"served: at most {self.PER_MINUTE} observation rows a minute from one seat: this one is not written "
                "(run the lesson again in a minute)"
            )
        self.written.append(now)
        return None


SEAT_ROWS = RowQuota()  # this app process is one seat


def lesson_run(trainer: Trainer, failure: str = "") -> LessonRun:
    """The run as it ended (failure: the message of a Failed event, a divergence), with counting's test figure on
    its split (the order chosen on held-out) when it has held-out and test text."""
    from engine.config import stream_length
    from engine.lab.verdict import counting_table

    table = counting_table(trainer.corpus, stream_length(trainer.config)) if trainer.corpus.test else None
    return LessonRun(
        config=trainer.config,
        history=tuple(trainer.state.history),
        timeline=trainer.timeline(),
        vocab_size=len(trainer.vocab),
        training_text=trainer.corpus.text,
        failure=failure,
        counting=table.best_test() if table is not None else None,
    )


def with_verdict(observation: Observation, trainer: Trainer) -> Observation:
    """The observation with the run's verdict against counting after it (engine/lab/verdict.py): its test figure against
    counting's on the test text, or its best held-out figure against counting's held-out one."""
    from engine.lab.verdict import verdict
    from tui import baselines

    table = baselines.compute(trainer)  # counted when the run started, in the app; about a second otherwise
    best, test = trainer.best_epoch(), trainer.test_figure()
    held_out = best.val_perplexity if best is not None else None
    judged = verdict(table, held_out, test.perplexity if test else None) if table is not None else None
    if judged is None:
        return observation
    line = judged.line()
    return dataclasses.replace(observation, text=f"{observation.text} {line[0].upper()}{line[1:]}.")


def seat_name() -> str:
    """Who the row is from: a served session's directory name (one per browser tab), else the user's login."""
    served = os.environ.get(SESSION_DIR_ENV)
    if served:
        return os.path.basename(os.path.normpath(served))
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a container
        return f"uid {os.getuid()}"


def observe_and_collect(
    lesson: Lesson, trainer: Trainer, failure: str, observations: str | None
) -> tuple[Observation, str | None, str | None]:
    """The observation of the run, appended to the class's CSV when one is named: (observation, a note saying where
    the row went when not to the named file, why the row could not be written). Both None when all went as asked."""
    try:
        observation = with_verdict(lesson.observe(lesson_run(trainer, failure)), trainer)
    except Exception as exc:  # an observation never ends the app or the command in a traceback
        return Observation(lesson.name, f"could not compute the observation: {first_line(exc)}"), None, None
    if not observations:
        return observation, None, None
    refused = SEAT_ROWS.refuse() if os.environ.get(SESSION_DIR_ENV) else None
    if refused is not None:  # served: one seat cannot fill the class's CSV (15 rows in 75 s with 1-epoch runs)
        return observation, None, refused
    target = own_file(observations, lesson)
    try:
        append_observation(target, lesson, observation, seat_name())
    except RnnTuiError as exc:
        return observation, None, str(exc)
    if target == Path(observations):
        return observation, None, None
    # Never silently elsewhere: the learner is told where the row went.
    return (
        observation,
        f"lesson {lesson.name}'s observation was appended to {target.name}, beside the class's "
        f"{Path(observations).name}, which collects another lesson's observations",
        None,
    )


def own_file(observations: str, lesson: Lesson) -> Path:
    """Where lesson's row goes: the class's CSV, unless it already collects another lesson's rows (a learner who
    picked another lesson in the app, a served seat included): then that lesson's own CSV beside it,
    observations-LESSON.csv for `rnn-tui serve`'s observations-OTHER.csv, else NAME-LESSON.csv."""
    path = Path(observations)
    try:
        with path.open(encoding="utf-8", newline="") as file:
            header = next(csv.reader(file), None)
    except (OSError, UnicodeDecodeError):  # not there yet, or not a CSV: append_observation says what is wrong
        return path
    if header is None or header == csv_header(lesson) or tuple(header[: len(CSV_FIELDS)]) != CSV_FIELDS:
        return path  # ours, empty, or not a class's CSV at all (refused with its own message)
    return lesson_file(observations, lesson.name)


def lesson_file(observations: str, lesson: str) -> Path:
    """The CSV beside the class's observations for lesson's rows: observations-LESSON.csv beside `rnn-tui serve`'s
    observations-OTHER.csv, else NAME-LESSON.csv."""
    path = Path(observations)
    stem = "observations" if path.stem.startswith("observations-") else path.stem
    return path.with_name(f"{stem}-{lesson}{path.suffix or '.csv'}")
