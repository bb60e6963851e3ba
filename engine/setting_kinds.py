"""The kinds of training setting (engine.declaration.Setting.kind), one small class each.

A kind says everything that depends on what sort of value a setting holds: how its text parses (the app's form),
how a value is shown as text, how a value is checked, which flag the command line gives it, which words give a
value back to that flag (engine.config.to_argv), which widget the form shows, and which dimension a sweep searches.
Every front end asks the kind instead of testing the kind's name. No torch, no front end is imported.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, Protocol

from engine.errors import ConfigError

# The value of one setting, as TrainConfig's fields hold them: prefixes a tuple of strings, a blank optional one None.
# Which type each name takes is checked when a config is made (validate), not statically: a setting travels by name.
SettingValue = int | float | str | tuple[str, ...] | None

KindName = Literal["int", "float", "optional-int", "optional-float", "choice", "switch", "prefixes", "path"]
Group = Literal["corpus", "model", "training", "reports"]  # the --help section
Runs = Literal["label", "tiebreak", "never"]  # how F10 tells runs apart by a setting (engine.run_book)
SearchDimension = Literal["int", "float", "choice"]  # what a sweep samples (engine.sweep.space)
Widget = Literal["input", "select", "wide-input"]  # the form's field: a line, a list, a line spanning its row

GROUPS: tuple[Group, ...] = ("corpus", "model", "training", "reports")  # the --help sections, in this order
SWITCH = ("off", "on")  # a switch's choices (SwitchKind): its flag's words, the form's list, a sweep's choices


class Declared(Protocol):
    """What a kind reads of a setting's declaration (engine.declaration.Setting)."""

    @property
    def name(self) -> str: ...
    @property
    def choices(self) -> tuple[str, ...]: ...
    @property
    def metavar(self) -> str | None: ...
    @property
    def minimum(self) -> float | None: ...
    @property
    def above(self) -> bool: ...
    @property
    def maximum(self) -> float | None: ...
    @property
    def below(self) -> bool: ...
    @property
    def range_note(self) -> str: ...


def finite(name: str, value: object) -> float:
    """value as a float, or ConfigError naming the setting: a bool, a string or inf/nan is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"«{name}» must be a finite number, got {value!r}")
    return float(value)


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"«{name}» must be one of {', '.join(choices)}; got {value!r}")


def show_number(value: object) -> str:
    """A value as a flag or a form shows it: a float in %g ('0.001'), anything else as str.

    Exact: a float the short form would round (a sweep's lr 0.006426907713747913) keeps every digit (repr), so
    Apply best and the ready command rerun the trial to the last digit."""
    if not isinstance(value, float):
        return str(value)
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


class Kind:
    """A kind of setting value; the base is a plain line of text (a path)."""

    name: ClassVar[KindName]
    whole: ClassVar[bool] = False  # a whole number
    numeric: ClassVar[bool] = False  # a number: it has a range
    widget: ClassVar[Widget] = "input"
    search: ClassVar[SearchDimension | None] = None  # a sweep searches it as this (when the setting is searchable)
    fixed_choices: ClassVar[tuple[str, ...]] = ()  # the choices of every setting of this kind (none declared)

    def parse(self, declared: Declared, text: str) -> SettingValue:
        """The value of a field's text, or ConfigError naming the setting (check() tests the range)."""
        return text.strip() or None

    def format(self, value: SettingValue) -> str:
        """The text a field shows for value; a blank one (None) is empty."""
        return "" if value is None else str(value)

    def check(self, declared: Declared, value: object) -> None:
        """ConfigError naming the setting when value is not one this kind holds within its declared range."""

    def flag_keywords(self, declared: Declared) -> dict[str, Any]:
        """argparse's add_argument keywords for the flag: its type, choices or repetition (tui.cli)."""
        return {"metavar": declared.metavar}

    def words(self, option: str, value: SettingValue) -> list[str]:
        """The command-line words that give value back to the flag option (engine.config.to_argv)."""
        return [option, repr(value) if isinstance(value, float) else str(value)]


class PathKind(Kind):
    """A file's path; blank: the default (the preset's own corpus)."""

    name = "path"
    widget = "wide-input"


class ChoiceKind(Kind):
    """One of the declared choices."""

    name: ClassVar[KindName] = "choice"
    widget = "select"
    search = "choice"

    def parse(self, declared: Declared, text: str) -> SettingValue:
        return text.strip()

    def check(self, declared: Declared, value: object) -> None:
        check_choice(declared.name, value, declared.choices)

    def flag_keywords(self, declared: Declared) -> dict[str, Any]:
        return {"choices": declared.choices}


class SwitchKind(ChoiceKind):
    """On or off: the choices SWITCH on the command line, in the form and in a sweep (--tie on); the engine reads a
    value as a bool through is_on, the one place "on" is compared."""

    name = "switch"
    fixed_choices = SWITCH

    @staticmethod
    def is_on(value: SettingValue) -> bool:
        """A switch's value as the engine uses it: "on" is True, "off" False."""
        return value == SWITCH[1]


class PrefixesKind(Kind):
    """Texts to sample after; a repeated flag, a comma-separated field (Chinese commas too)."""

    name = "prefixes"
    separators: ClassVar[tuple[str, ...]] = (",", "，", "、")

    def parse(self, declared: Declared, text: str) -> SettingValue:
        for separator in self.separators[1:]:
            text = text.replace(separator, self.separators[0])
        return tuple(p.strip() for p in text.split(self.separators[0]) if p.strip())

    def format(self, value: SettingValue) -> str:
        return ", ".join(value) if isinstance(value, tuple) else super().format(value)

    def flag_keywords(self, declared: Declared) -> dict[str, Any]:
        return {"metavar": declared.metavar, "action": "append"}

    def words(self, option: str, value: SettingValue) -> list[str]:
        return [word for prefix in (value if isinstance(value, tuple) else ()) for word in (option, str(prefix))]


# What a form says a blank field means, where it may be blank.
BLANK_MEANS = {"temperature": "greedy", "seed": "random"}


class NumberKind(Kind):
    """A number within the declared range (minimum, above, maximum, below); optional: blank (None) too."""

    numeric = True
    optional: ClassVar[bool] = False
    number_type: ClassVar[type[int] | type[float]] = float

    def parse(self, declared: Declared, text: str) -> SettingValue:
        text = text.strip()
        if self.optional and not text:
            return None
        try:
            value = self.number_type(text)
        except ValueError:
            sort = "a whole number" if self.whole else "a number"
            blank = f" (blank: {BLANK_MEANS[declared.name]})" if declared.name in BLANK_MEANS else ""
            raise ConfigError(f"«{declared.name}» must be {sort}{blank}, got {text!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"«{declared.name}» must be a finite number, got {text!r}")
        return value

    def format(self, value: SettingValue) -> str:
        return show_number(value) if value is not None else ""

    def flag_keywords(self, declared: Declared) -> dict[str, Any]:
        return {"metavar": declared.metavar, "type": self.number_type}

    def check(self, declared: Declared, value: object) -> None:
        if value is None and self.optional:
            return
        if self.whole:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"«{declared.name}» must be a whole number, got {value!r}")
            number: float = value
        else:
            number = finite(declared.name, value)
        low, high = declared.minimum, declared.maximum
        if low is not None and (number < low or (declared.above and number == low)):
            raise self.range_error(declared, value)
        if high is not None and (number > high or (declared.below and number == high)):
            raise self.range_error(declared, value)

    def range_error(self, declared: Declared, value: object) -> ConfigError:
        """'«hidden» must be a whole number ≥ 1, got 0': the setting named for each front end to word
        (engine.errors)."""
        low, high = declared.minimum, declared.maximum
        note = f" ({declared.range_note})" if declared.range_note else ""
        if low is not None and high is not None:
            shown = f"[{low:g}, {high:g}{')' if declared.below else ']'}"
            return ConfigError(f"«{declared.name}» must be in {shown}, got {value!r}")
        if low is None:
            sign = "<" if declared.below else "≤"
            return ConfigError(f"«{declared.name}» must be {sign} {high:g}{note}, got {value!r}")
        if self.whole:
            return ConfigError(f"«{declared.name}» must be a whole number ≥ {low:g}{note}, got {value!r}")
        sign = ">" if declared.above else "≥"
        return ConfigError(f"«{declared.name}» must be {sign} {low:g}{note}, got {value!r}")


class IntKind(NumberKind):
    name: ClassVar[KindName] = "int"
    whole = True
    number_type = int
    search: ClassVar[SearchDimension | None] = "int"


class FloatKind(NumberKind):
    name: ClassVar[KindName] = "float"
    search: ClassVar[SearchDimension | None] = "float"


class OptionalIntKind(IntKind):
    """A whole number or blank (None): a random seed."""

    name = "optional-int"
    optional = True
    search = None  # a sweep does not search a blank


class OptionalFloatKind(FloatKind):
    """A number or blank (None): greedy sampling."""

    name = "optional-float"
    optional = True
    search = None


KINDS: dict[KindName, Kind] = {
    kind.name: kind
    for kind in (
        IntKind(),
        FloatKind(),
        OptionalIntKind(),
        OptionalFloatKind(),
        ChoiceKind(),
        SwitchKind(),
        PrefixesKind(),
        PathKind(),
    )
}
