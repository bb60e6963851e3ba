"""The Optuna internals engine/sweep/optuna_internals.py relies on: each is used on a real in-memory study, and the
version bound in pyproject.toml is the one they were checked against. A release that changes them fails here,
loudly, before a sweep meets it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import optuna
from packaging.version import Version

from engine.sweep.optuna_internals import TESTED_BELOW, check_internals


def test_every_optuna_internal_the_sweep_uses_is_there_and_works() -> None:
    problems = check_internals()
    assert not problems, (
        f"Optuna {optuna.__version__} changed internals engine/sweep/optuna_internals.py relies on: {problems}"
    )


def test_pyproject_bounds_optuna_below_the_release_the_internals_were_checked_against() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    requirement = next(d for d in pyproject["project"]["dependencies"] if d.startswith("optuna"))
    assert f"<{TESTED_BELOW}" in requirement.replace(" ", ""), requirement
    assert Version(optuna.__version__) < Version(TESTED_BELOW)
