"""A sweep's search space: which settings Optuna varies, over which ranges. No torch, no Optuna import.

Short form (one `--search NAME=SPEC` per setting, also the string values of a space file):

    lr=1e-4:1e-2:log        a float range, sampled log-uniformly (lr and clip are floats)
    dropout=0:0.5           a float range, uniform
    hidden=32:512:log       a whole-number range (hidden, layers, num_steps, batch_size are whole numbers)
    num_steps=16:64:8       a whole-number range in steps of 8
    cell=rnn,gru,lstm       a choice (any setting: clip=0,0.1,1 includes clipping off)
    hidden=256              one value: fixed for every trial, as the flag --hidden 256 would

A space file (--space FILE, TOML or JSON) maps the same names to a short-form string, a list (a choice), a
number (fixed), or a table {low, high, log, step} / {choices}:

    lr = "1e-4:1e-2:log"
    cell = ["gru", "lstm"]
    [hidden]
    low = 64
    high = 512
    log = true

dropout only applies between layers: it is sampled only in trials with more than one layer (0 otherwise).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import SETTINGS, TrainConfig
from engine.errors import ConfigError, first_line

if TYPE_CHECKING:  # this module imports no Optuna: a trial is only handed in
    import optuna

# What a sweep may vary, and how, from the settings' declarations (engine.declaration.Setting: searchable, kind,
# search).
SEARCHABLE = tuple(s.name for s in SETTINGS if s.searchable)
FLOAT_SETTINGS = tuple(s.name for s in SETTINGS if s.searchable and s.kind_of.search == "float")
INT_SETTINGS = tuple(s.name for s in SETTINGS if s.searchable and s.kind_of.search == "int")
CHOICE_SETTINGS: dict[str, tuple[str, ...]] = {
    s.name: s.choices for s in SETTINGS if s.searchable and s.kind_of.search == "choice"
}
# The settings the default space searches (when neither --space nor --search is given).
DEFAULT_SEARCH = tuple(s.name for s in SETTINGS if s.search is not None)


@dataclass(frozen=True)
class Param:
    """One searched setting: a range (low..high, maybe log or stepped) or a list of choices."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    @property
    def is_choice(self) -> bool:
        return bool(self.choices)

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a range; a list of choices has none."""
        if self.low is None or self.high is None:
            raise ValueError(f"{self.name} is a list of choices, not a range")
        return float(self.low), float(self.high)

    def describe(self) -> str:
        """The short form that gives this parameter back: 'lr=0.0001:0.01:log'."""
        if self.choices:
            return f"{self.name}={','.join(_show(c) for c in self.choices)}"
        tail = ":log" if self.log else f":{_show(self.step)}" if self.step is not None else ""
        return f"{self.name}={_show(self.low)}:{_show(self.high)}{tail}"


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]
    fixed: tuple[tuple[str, Any], ...] = ()  # settings a space names with a single value

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def describe(self) -> str:
        return " ".join(p.describe() for p in self.params) or "(nothing searched)"


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(name: str, text: str, whole: bool) -> float | int:
    try:
        value: float | int = int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"search space: {name} wants {kind}, got {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"search space: {name} wants a finite number, got {text!r}")
    return value


def _check_name(name: str) -> None:
    if name not in SEARCHABLE:
        raise ConfigError(f"search space: unknown parameter {name!r}; searchable: {', '.join(SEARCHABLE)}")


def _choice_value(name: str, text: str) -> Any:
    if name in CHOICE_SETTINGS:
        if text not in CHOICE_SETTINGS[name]:
            raise ConfigError(f"search space: {name} must be among {', '.join(CHOICE_SETTINGS[name])}; got {text!r}")
        return text
    return _number(name, text, whole=name in INT_SETTINGS)


def make_range(name: str, low: Any, high: Any, log: bool = False, step: Any = None) -> Param:
    """A checked range: low < high (an empty range is an error), log only above 0, whole numbers where needed."""
    _check_name(name)
    if name in CHOICE_SETTINGS:
        raise ConfigError(f"search space: {name} is a choice, give it as {name}={','.join(CHOICE_SETTINGS[name])}")
    whole = name in INT_SETTINGS
    lo = _number(name, str(low), whole)
    hi = _number(name, str(high), whole)
    if not lo < hi:
        raise ConfigError(f"search space: {name}={_show(lo)}:{_show(hi)} is an empty range; low must be below high")
    if log and lo <= 0:
        raise ConfigError(f"search space: {name} on a log scale needs low > 0, got {_show(lo)}")
    if log and step is not None:
        raise ConfigError(f"search space: {name} takes log or a step, not both")
    stepped = None
    if step is not None:
        stepped = _number(name, str(step), whole)
        if stepped <= 0:
            raise ConfigError(f"search space: {name}'s step must be > 0, got {_show(stepped)}")
    param = Param(name, lo, hi, log, stepped)
    _check_values(name, [lo, hi])
    return param


def make_choice(name: str, values: Iterable[Any]) -> Param:
    _check_name(name)
    choices = tuple(dict.fromkeys(_choice_value(name, str(v).strip()) for v in values))
    if not choices:
        raise ConfigError(f"search space: {name} has no choices")
    _check_values(name, list(choices))
    return Param(name, choices=choices)


def _check_values(name: str, values: list[Any]) -> None:
    """Each end of a range (each choice) must be a value the setting accepts, so no trial fails on it."""
    for value in values:
        try:
            TrainConfig(**{name: value})
        except ConfigError as exc:
            raise ConfigError(f"search space: {exc}") from None


def parse_search(text: str) -> Param | tuple[str, Any]:
    """One short form, 'lr=1e-4:1e-2:log' or 'cell=rnn,gru': a Param, or (name, value) for a single value."""
    name, sep, spec = text.partition("=")
    name = name.strip().replace("-", "_")
    spec = spec.strip()
    if not sep or not name:
        raise ConfigError(f"search space: {text!r} is not NAME=SPEC (e.g. lr=1e-4:1e-2:log or cell=rnn,gru)")
    _check_name(name)
    if not spec:
        raise ConfigError(f"search space: {name} has an empty range")
    if ":" in spec:
        parts = [p.strip() for p in spec.split(":")]
        if len(parts) not in (2, 3) or not all(parts):
            raise ConfigError(f"search space: {name}={spec} is not LOW:HIGH, LOW:HIGH:log or LOW:HIGH:STEP")
        if len(parts) == 3:
            if parts[2] == "log":
                return make_range(name, parts[0], parts[1], log=True)
            return make_range(name, parts[0], parts[1], step=parts[2])
        return make_range(name, parts[0], parts[1])
    values = [v.strip() for v in spec.split(",")]
    if not all(values):
        raise ConfigError(f"search space: {name}={spec} has an empty choice")
    if len(values) == 1:
        return name, _choice_value(name, values[0])
    return make_choice(name, values)


def _from_file_entry(name: str, entry: Any) -> Param | tuple[str, Any]:
    name = name.replace("-", "_")
    _check_name(name)
    if isinstance(entry, str):
        return parse_search(f"{name}={entry}")
    if isinstance(entry, list):
        return make_choice(name, entry)
    if isinstance(entry, bool):
        raise ConfigError(f"search space: {name} cannot be {entry}")
    if isinstance(entry, int | float):
        return name, _choice_value(name, str(entry))
    if isinstance(entry, Mapping):
        unknown = sorted(set(entry) - {"low", "high", "log", "step", "choices"})
        if unknown:
            raise ConfigError(
                f"search space: {name} has unknown keys {', '.join(unknown)} (low, high, log, step, choices)"
            )
        if "choices" in entry:
            choices = entry["choices"]
            if not isinstance(choices, list):
                raise ConfigError(f"search space: {name}.choices must be a list")
            return make_choice(name, choices)
        if "low" not in entry or "high" not in entry:
            raise ConfigError(f"search space: {name} needs low and high (or choices)")
        return make_range(name, entry["low"], entry["high"], bool(entry.get("log", False)), entry.get("step"))
    raise ConfigError(f"search space: {name} must be a string, a list, a number or a table")


def read_space_file(path: str | Path) -> list[Param | tuple[str, Any]]:
    """The entries of a TOML or JSON space file (chosen by its suffix; .toml else JSON)."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the space file {file}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text) if file.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "TOML" if file.suffix.lower() == ".toml" else "JSON"
        raise ConfigError(f"the space file {file} is not valid {kind}: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the space file {file} must map setting names to ranges")
    if not data:
        raise ConfigError(f"the space file {file} is empty: name at least one setting to search")
    return [_from_file_entry(str(name), entry) for name, entry in data.items()]


def default_space(fixed: Mapping[str, Any]) -> Space:
    """The space searched when none is given (each setting's declared search range), less what the command line
    fixes. A range may follow the optimizer (search_sgd): Adam's useful learning rates sit around 1e-3, plain SGD's
    (the English edition's) around 1.
    """
    sgd = fixed.get("optimizer", TrainConfig().optimizer) == "sgd"
    params = []
    for declared in SETTINGS:
        spec = (declared.search_sgd if sgd else None) or declared.search
        if spec is None or declared.name in fixed:
            continue
        entry = parse_search(f"{declared.name}={spec}")
        if isinstance(entry, Param):
            params.append(entry)
    return Space(tuple(params))


def build_space(fixed: Mapping[str, Any], space_file: str | None = None, searches: Iterable[str] = ()) -> Space:
    """The space of a sweep: the default one, or exactly what --space and --search name (--search wins)."""
    entries: list[Param | tuple[str, Any]] = []
    if space_file:
        entries.extend(read_space_file(space_file))
    entries.extend(parse_search(text) for text in searches)
    if not entries:
        return default_space(fixed)
    by_name: dict[str, Param | tuple[str, Any]] = {}
    for entry in entries:
        by_name[entry.name if isinstance(entry, Param) else entry[0]] = entry
    clashes = [name for name, entry in by_name.items() if isinstance(entry, Param) and name in fixed]
    if clashes:
        flags = ", ".join(f"--{n.replace('_', '-')}" for n in clashes)
        raise ConfigError(f"{flags} fixes what the search space varies: give one or the other")
    params = tuple(e for e in by_name.values() if isinstance(e, Param))
    values = tuple(e for e in by_name.values() if not isinstance(e, Param))
    if not params:
        raise ConfigError("the search space varies nothing: give at least one range or choice")
    return Space(params, values)


def suggest(trial: optuna.Trial, space: Space, fixed: Mapping[str, Any]) -> dict[str, Any]:
    """Ask an optuna trial for one setting per parameter; dropout only when the trial has more than one layer."""
    chosen: dict[str, Any] = dict(space.fixed)
    for param in space.params:
        if param.name == "dropout":
            continue  # after layers, below
        chosen[param.name] = _suggest_one(trial, param)
    dropout = next((p for p in space.params if p.name == "dropout"), None)
    if dropout is not None:
        layers = chosen.get("layers", fixed.get("layers", TrainConfig().layers))
        chosen["dropout"] = _suggest_one(trial, dropout) if layers > 1 else 0.0
    return chosen


def _suggest_one(trial: optuna.Trial, param: Param) -> Any:
    if param.is_choice:
        return trial.suggest_categorical(param.name, list(param.choices))
    low, high = param.bounds
    if param.name in INT_SETTINGS:
        return trial.suggest_int(param.name, int(low), int(high), step=int(param.step or 1), log=param.log)
    return trial.suggest_float(param.name, low, high, step=param.step, log=param.log)
