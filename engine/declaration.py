"""A training setting's declaration: Setting (what every front end reads of it), setting(…)'s typed keywords
(Declaration) and setting() itself, which engine.config.TrainConfig's fields are declared with. No torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NotRequired, TypedDict, TypeVar, Unpack

from engine.setting_kinds import KINDS, Group, Kind, KindName, Runs

SETTING = "setting"  # the dataclass field metadata key of a setting's declaration


@dataclass(frozen=True)
class Setting:
    """One training setting, declared once: every front end and engine list of settings is derived from it.

    The command line's flags (tui.cli), the app's form (tui.app.widgets.settings), the ready command (to_argv), the
    sweep's search space (engine.sweep.space), the runs table's labels (engine.run_book) and the per-epoch record
    (engine.events.EpochEnd.record) all read these; tests/test_settings.py walks every one through every place.
    """

    name: str  # the TrainConfig attribute
    label: str  # the app form's label (at most 9 characters, 8 if it restarts: its '*' follows it in the form)
    help: str  # the flag's help; its default is added (default_help)
    kind: KindName  # int, float, optional-int, optional-float, choice, switch, prefixes, path (engine.setting_kinds)
    group: Group  # the --help section: corpus, model, training, reports
    runs: Runs  # how F10 tells runs apart by it: "label", "tiebreak" (only when labels clash) or "never"
    choices: tuple[str, ...] = ()  # a choice's; a switch's are its kind's (filled in)
    metavar: str | None = None
    default_help: str | None = None  # what --help says of the default; None: the value itself; "": nothing
    minimum: float | None = None  # the range: a number below is refused
    above: bool = False  # the minimum itself is refused too (lr > 0)
    maximum: float | None = None
    below: bool = False  # the maximum itself is refused too (dropout < 1)
    range_note: str = ""  # told with a range error: what 0 means ("0 turns it off"), or what to do instead
    live: bool = False  # a running trainer takes it between batches; otherwise it needs a restart (F7)
    resumable: bool = False  # a resumed run may change it (a live one always may)
    per_epoch: bool = False  # each epoch's figures record it (EpochEnd), as it can change mid-run
    vocab: bool = False  # the run's vocabulary depends on it
    compared: bool = True  # a sweep keeps it the same for a study's trials (False: it does not change the objective)
    searchable: bool = False  # a sweep may vary it (--search NAME=SPEC)
    search: str | None = None  # its range in the default search space (short form); None: not searched by default
    search_sgd: str | None = None  # its default range when the optimizer is plain SGD
    flag: str = ""  # the command line's; "" is the name with dashes

    def __post_init__(self) -> None:
        if not self.choices and self.kind_of.fixed_choices:  # a switch: off, on
            object.__setattr__(self, "choices", self.kind_of.fixed_choices)

    @property
    def option(self) -> str:
        """The command-line option: '--batch-size'."""
        return "--" + (self.flag or self.name.replace("_", "-"))

    @property
    def kind_of(self) -> Kind:
        """The kind's own rules: parsing, showing, checking, its flag, its form field, its search dimension."""
        return KINDS[self.kind]

    @property
    def whole(self) -> bool:  # a whole number
        return self.kind_of.whole

    @property
    def numeric(self) -> bool:
        return self.kind_of.numeric


class Declaration(TypedDict):
    """setting()'s keywords: Setting's fields less the name, so mypy catches a misspelt or mistyped one
    (tests/test_settings.py keeps the two lists the same)."""

    label: str
    help: str
    kind: KindName
    group: Group
    runs: Runs
    choices: NotRequired[tuple[str, ...]]
    metavar: NotRequired[str | None]
    default_help: NotRequired[str | None]
    minimum: NotRequired[float | None]
    above: NotRequired[bool]
    maximum: NotRequired[float | None]
    below: NotRequired[bool]
    range_note: NotRequired[str]
    live: NotRequired[bool]
    resumable: NotRequired[bool]
    per_epoch: NotRequired[bool]
    vocab: NotRequired[bool]
    compared: NotRequired[bool]
    searchable: NotRequired[bool]
    search: NotRequired[str | None]
    search_sgd: NotRequired[str | None]
    flag: NotRequired[str]


T = TypeVar("T")


def setting(default: T, **declaration: Unpack[Declaration]) -> T:
    """A TrainConfig field with its declaration (Setting's fields, less the name): the one place a setting is named."""
    return field(default=default, metadata={SETTING: declaration})
