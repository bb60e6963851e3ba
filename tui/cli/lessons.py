"""`rnn-tui lessons` lists chapter 6's exercises; `--lesson NAME` (train, the app, serve) turns one into flags."""

from __future__ import annotations

import argparse
from typing import Any

from engine.errors import ConfigError
from tui.cli.lines import fail


def add_lessons_parser(commands: Any) -> None:
    commands.add_parser(
        "lessons",
        help="list the lessons (--lesson NAME): chapter 6's exercises as guided runs",
        description="Each lesson is a preset, a question, what to watch, and an observation from your run at its end.",
    )


def apply_lesson(args: argparse.Namespace) -> None:
    """--lesson NAME: its settings become the flags not given explicitly (so every front end and a served session's
    command line see them as flags); a bad name is one line and exit 2."""
    name = getattr(args, "lesson", None)
    if getattr(args, "observations", None) is not None and name is None:
        fail("--observations collects a lesson's observations: give --lesson NAME too (rnn-tui lessons lists them)")
    if name is None:
        return
    if args.command == "sweep":
        fail("--lesson applies to train, the app and serve, not to a sweep")
    from engine.lessons import find_lesson

    try:
        lesson = find_lesson(name)
    except ConfigError as exc:
        fail(exc)
    for setting_name, value in lesson.settings.items():
        if getattr(args, setting_name, None) is None:
            setattr(args, setting_name, list(value) if isinstance(value, tuple) else value)


def run_lessons() -> int:
    """`rnn-tui lessons`: each lesson's name, title, question and settings."""
    from engine.lessons import LESSONS

    for lesson in LESSONS:
        print(f"{lesson.name}: {lesson.title}")
        print(f"  {lesson.question}")
        print(f"  settings: {' '.join(lesson.argv())}")
    print("run one: rnn-tui --lesson NAME (the app) or rnn-tui train --headless --lesson NAME")
    return 0
