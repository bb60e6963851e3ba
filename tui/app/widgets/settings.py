"""Hyperparameter form: every engine setting, validated inline.

Live settings (engine.config.LIVE_SETTINGS) are sent to the running trainer on Enter or when the field loses
focus; the others are structural: marked with *, highlighted while they differ from the running model, and
applied by a restart (F7).

Choosing a preset (the Chinese edition's run, or the English edition's) fills every field it sets
(engine.presets.PRESET_SETTINGS) and blanks the corpus, so the preset's own text is used; a field changed
afterwards keeps its new value, as an explicit flag wins over a preset on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from engine.config import (
    SAMPLINGS,
    SETTINGS,
    SETTINGS_BY_NAME,
    SettingValue,
    TrainConfig,
    ineffective_settings,
)
from engine.declaration import Setting
from engine.errors import ConfigError, RnnTuiError
from engine.presets import PRESET_SETTINGS
from engine.setting_kinds import Kind, KindName
from tui.app.widgets.ordered_input import OrderedInput


@dataclass(frozen=True)
class Field:
    """A setting as the form shows it: its declaration (engine.declaration.Setting) and the choices offered."""

    setting: Setting
    choices: tuple[str, ...] = ()

    @property
    def name(self) -> str:  # TrainConfig attribute
        return self.setting.name

    @property
    def label(self) -> str:
        return self.setting.label

    @property
    def kind(self) -> KindName:  # int, float, optional-int, optional-float, choice, prefixes, path
        return self.setting.kind

    @property
    def kind_of(self) -> Kind:  # how its text parses and shows, which widget it is (engine.setting_kinds)
        return self.setting.kind_of

    @property
    def live(self) -> bool:
        return self.setting.live


# Every sampler a preset names is offered, even one this engine lacks: choosing it is then an inline error.
SAMPLING_CHOICES = tuple(dict.fromkeys([*SAMPLINGS, *(str(p["sampling"]) for p in PRESET_SETTINGS.values())]))
EXTRA_CHOICES = {"sampling": SAMPLING_CHOICES}

# Every setting, in TrainConfig's order: live settings first (they are the ones a person plays with while training
# runs), then the preset, which fills most of the rest, the model, the optimisation, the data. Two per row.
FIELDS = tuple(Field(s, EXTRA_CHOICES.get(s.name, s.choices)) for s in SETTINGS)
FIELDS_BY_NAME = {f.name: f for f in FIELDS}
HINT = "Enter applies live · F7 restarts"  # the form's message line when no field is in error


def form_name(name: str) -> str:
    """How the form calls a setting named in an engine message (engine.errors.worded): its label, 'held-out'."""
    declared = SETTINGS_BY_NAME.get(name)
    return declared.label if declared is not None else name.replace("_", "-")


def form_words(exc: BaseException) -> str:
    """An error's message with the settings it names called as the form calls them."""
    return exc.worded(form_name) if isinstance(exc, RnnTuiError) else str(exc)


def format_field_value(field: Field, value: SettingValue) -> str:
    return field.kind_of.format(value)


def parse_value(field: Field, text: str) -> SettingValue:
    """The typed value of a field's text, or ConfigError naming the field (the config checks ranges)."""
    return field.kind_of.parse(field.setting, text)


@dataclass
class LiveSettingSubmitted(Message):
    """A live field was submitted (Enter, or focus left it) with a value that parses; if it differs from the run's
    setting, tui.app.run_control sends it to the trainer."""

    name: str
    value: SettingValue


class StructuralChanged(Message):
    """A structural field changed: the app previews the shapes and marks what a restart would change."""


class SettingsForm(Vertical):
    """The form. Its sixty-odd widgets are added just after the first frame: styling and laying them out took
    about a quarter of a second, and the first frame should not wait for a form nobody has looked at yet."""

    def __init__(self, config: TrainConfig, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Settings  (* = on restart, F7)"
        self._initial = config  # what the fields show when they are added
        self._fields_added = False
        self.errors: dict[str, str] = {}
        self._preset_shown = config.preset  # a preset Select change to another value is a choice: fill the form
        # Errors from checks beyond parsing (the corpus path exists, the device is here): field → the text that
        # failed. Re-reading the form (the shapes preview does, often) keeps them until that text is changed.
        self._sticky: dict[str, str] = {}
        self.notice = ""  # a setting that does nothing as set (engine.config.ineffective_settings)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="settings-scroll"):
            yield Grid(id="settings-grid")
        yield Static(Text(HINT, style="dim"), id="settings-error")

    def on_mount(self) -> None:
        self.call_after_refresh(self.add_fields)

    def add_fields(self) -> None:
        """Add the fields (once). Anything that reads or writes a field calls this first, so an early caller
        finds them: mount() puts widgets in the DOM at once."""
        if self._fields_added or not self.is_attached:  # not attached: the app is closing before they were added
            return
        self._fields_added = True
        self.query_one("#settings-grid", Grid).mount_all(self._field_widgets(self._initial))
        self.call_after_refresh(self._mark_inert)

    def _field_widgets(self, config: TrainConfig) -> list[Label | Input | Select[str]]:
        widgets: list[Label | Input | Select[str]] = []
        position = 0  # fields placed so far: an even count starts a row (two fields a row)
        for field in FIELDS:
            if field.kind_of.widget == "wide-input" and position % 2:  # a path spans its row (app.tcss): start a row
                widgets += [Label(""), Label("")]
                position += 1
            label = field.label if field.live else field.label + "*"
            classes = "setting-label" + (" -live" if field.live else "") + (" -second" if position % 2 else "")
            position += 1
            widgets.append(Label(label, id=f"label-{field.name}", classes=classes))
            widget_id = f"setting-{field.name}"
            text = format_field_value(field, getattr(config, field.name))
            if field.kind_of.widget == "select":
                options = [(c, c) for c in field.choices]
                widgets.append(
                    Select(options, value=text, id=widget_id, compact=True, allow_blank=False, classes="setting")
                )
            elif field.kind_of.widget == "wide-input":
                placeholder = "blank: the preset's own corpus"
                widgets.append(
                    OrderedInput(text, id=widget_id, compact=True, classes="setting", placeholder=placeholder)
                )
            else:
                widgets.append(OrderedInput(text, id=widget_id, compact=True, classes="setting"))
        return widgets

    # ----- reading and writing values -----

    def widget(self, name: str) -> Input | Select[str]:
        self.add_fields()
        return self.query_one(f"#setting-{name}")  # type: ignore[return-value]  # every #setting- is one of the two

    def text_of(self, name: str) -> str:
        widget = self.widget(name)
        return str(widget.value) if isinstance(widget, Select) else widget.value

    def set_text(self, name: str, text: str) -> None:
        widget = self.widget(name)
        widget.value = text

    def load(self, config: TrainConfig) -> None:
        """Show config's values (a new run began, or the form is reset)."""
        self._preset_shown = config.preset  # showing a config's preset is not choosing it
        if not self._fields_added:
            self._initial = config
            return
        for field in FIELDS:
            self.set_text(field.name, format_field_value(field, getattr(config, field.name)))
        self.errors.clear()
        self._sticky.clear()
        self.query(".setting").remove_class("-invalid", "-pending")
        self._mark_inert()

    def apply_preset(self, preset: str) -> list[str]:
        """Fill the fields preset sets with its values, blank the corpus (the preset's own); return what changed."""
        self._preset_shown = preset
        values: dict[str, Any] = {**PRESET_SETTINGS.get(preset, {}), "corpus": None}
        changed = []
        for name, value in values.items():
            field = FIELDS_BY_NAME.get(name)
            if field is None:  # a preset setting the form does not show
                continue
            text = format_field_value(field, value)
            if self.text_of(name) != text:
                self.set_text(name, text)
                changed.append(name)
        return changed

    def value(self, name: str) -> SettingValue:
        return parse_value(FIELDS_BY_NAME[name], self.text_of(name))

    def read_config(self, base: TrainConfig) -> TrainConfig:
        """The form's settings on top of base (for the corpus and other settings not in the form).

        Raises ConfigError (and marks the field) for the first field that does not parse or validate.
        """
        changes: dict[str, SettingValue] = {}
        for field in FIELDS:
            try:
                changes[field.name] = self.value(field.name)
                base.with_changes(**{field.name: changes[field.name]})  # names the field, not a later one
            except ConfigError as exc:
                self.set_error(field.name, form_words(exc))
                raise
            self.clear_error(field.name)
        return base.with_changes(**changes)

    # ----- marks -----

    def set_error(self, name: str, message: str, sticky: bool = False) -> None:
        self.errors[name] = message
        if sticky:
            self._sticky[name] = self.text_of(name)
        self.widget(name).add_class("-invalid")
        self._show_error()

    def clear_error(self, name: str) -> None:
        if name in self._sticky:
            if self._sticky[name] == self.text_of(name):
                return
            del self._sticky[name]
        if self.errors.pop(name, None) is not None:
            self.widget(name).remove_class("-invalid")
            self._show_error()

    def _show_error(self) -> None:
        line = self.query_one("#settings-error", Static)
        if self.errors:
            message = next(reversed(self.errors.values()))
            line.update(Text(message, style="bold red"))
        elif self.notice:
            line.update(Text(self.notice, style="yellow"))
        else:
            line.update(Text(HINT, style="dim"))

    def mark_pending(self, running: TrainConfig | None) -> list[str]:
        """Highlight structural fields that differ from the running model's; return their names."""
        pending = []
        for field in FIELDS:
            if field.live:
                continue
            try:
                differs = running is not None and self.value(field.name) != getattr(running, field.name)
            except ConfigError:
                differs = True
            self.widget(field.name).set_class(differs, "-pending")
            if differs:
                pending.append(field.name)
        return pending

    # ----- events -----

    def _field_of(self, widget_id: str | None) -> Field | None:
        if widget_id and widget_id.startswith("setting-"):
            return FIELDS_BY_NAME.get(widget_id.removeprefix("setting-"))
        return None

    def _submit_live(self, field: Field) -> None:
        try:
            value = parse_value(field, self.text_of(field.name))
        except ConfigError as exc:
            self.set_error(field.name, form_words(exc))
            return
        # Sent even when unchanged: whether it is a change is for the run's own settings to say (tui.app.run_control).
        self.post_message(LiveSettingSubmitted(field.name, value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        field = self._field_of(event.input.id)
        if field is None:
            return
        event.stop()
        if field.live:
            self._submit_live(field)
        else:
            self.post_message(StructuralChanged())

    def on_input_blurred(self, event: Input.Blurred) -> None:
        field = self._field_of(event.input.id)
        if field is not None and field.live:
            self._submit_live(field)

    def on_input_changed(self, event: Input.Changed) -> None:
        field = self._field_of(event.input.id)
        if field is not None and not field.live:
            event.stop()
            self._check_structural(field)
        elif field is not None and field.name in self.errors:  # an error shown goes, or changes, as the user types
            self._check_structural(field, announce=False)

    def on_select_changed(self, event: Select.Changed) -> None:
        field = self._field_of(event.select.id)
        if field is not None:
            event.stop()
            if field.name == "preset" and event.value != self._preset_shown:
                self.apply_preset(str(event.value))
            self._check_structural(field)

    def _check_structural(self, field: Field, announce: bool = True) -> None:
        try:
            # Ranges too (hidden 0, dropout 1.5): each setting's check does not depend on the others.
            TrainConfig().with_changes(**{field.name: parse_value(field, self.text_of(field.name))})
        except ConfigError as exc:
            self.set_error(field.name, form_words(exc))
        else:
            self.clear_error(field.name)
        if field.name in ("dropout", "layers"):
            self._mark_inert()
        if announce:
            self.post_message(StructuralChanged())

    def _mark_inert(self) -> None:
        """Mark a setting that does nothing with the others as they are (dropout with one layer), saying why."""
        try:
            config = TrainConfig().with_changes(dropout=self.value("dropout"), layers=self.value("layers"))
        except ConfigError:
            notes = []
        else:
            notes = ineffective_settings(config)
        self.widget("dropout").set_class(bool(notes), "-inert")
        self.query_one("#label-dropout").set_class(bool(notes), "-inert")
        self.notice = "dropout: no effect with 1 layer" if notes else ""  # the line is a panel half a screen wide
        self._show_error()
