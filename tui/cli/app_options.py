"""`rnn-tui` with no command, and `rnn-tui train` without --headless: the typed options the app opens with."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from engine.config import TrainConfig, preset_config
from tui.cli.flags import config_overrides


@dataclass(frozen=True)
class AppOptions:
    """What the app is opened with, typed: the settings given explicitly and the run's own flags."""

    overrides: dict[str, Any] = field(default_factory=dict)  # the settings given (the preset fills the rest)
    resume: str | None = None
    save: str | None = None
    corpus_url: str | None = None
    threads: int | None = None
    paused: bool = False
    lesson: str | None = None  # --lesson: its settings are in overrides already (apply_lesson)
    observations: str | None = None  # --observations: the class's CSV the lesson's observation is appended to

    @property
    def config(self) -> TrainConfig:
        """The settings the first run starts with (checked by parse already)."""
        return preset_config(self.overrides)


def app_options(args: argparse.Namespace) -> AppOptions:
    """The app's options from parsed flags (tui.cli.main.parse)."""
    return AppOptions(
        overrides=config_overrides(args),
        resume=args.resume,
        save=args.save,
        corpus_url=args.corpus_url,
        threads=args.threads,
        paused=bool(getattr(args, "paused", False)),
        lesson=getattr(args, "lesson", None),
        observations=getattr(args, "observations", None),
    )
