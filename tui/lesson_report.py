"""A lesson's end, shared by the command line and the app: the learner's run as a LessonRun, its observation, and the
row for the class's CSV (engine/lessons.py computes everything; this only gathers the run and names the seat)."""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING

from engine.errors import RnnTuiError, first_line
from engine.lessons import Lesson, LessonRun, Observation, append_observation
from tui.served import SESSION_DIR_ENV

if TYPE_CHECKING:  # torch-backed
    from engine.trainer import Trainer


def lesson_run(trainer: Trainer, failure: str = "") -> LessonRun:
    """The run as it ended (failure: the message of a Failed event, a divergence)."""
    return LessonRun(
        config=trainer.config,
        history=tuple(trainer.state.history),
        timeline=trainer.timeline(),
        vocab_size=len(trainer.vocab),
        training_text=trainer.corpus.text,
        failure=failure,
    )


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
) -> tuple[Observation, str | None]:
    """The observation of the run, appended to the class's CSV when one is named; (observation, why the row could
    not be written or None)."""
    try:
        observation = lesson.observe(lesson_run(trainer, failure))
    except Exception as exc:  # an observation never ends the app or the command in a traceback
        return Observation(lesson.name, f"could not compute the observation: {first_line(exc)}"), None
    problem = None
    if observations:
        try:
            append_observation(observations, lesson, observation, seat_name())
        except RnnTuiError as exc:
            problem = str(exc)
    return observation, problem
