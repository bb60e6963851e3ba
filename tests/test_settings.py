"""Every setting is declared once (engine.declaration.Setting) and reaches every place it must: this walks each one
through the command line's parsers, the ready command (to_argv), the app's form, the search space, the runs table's
labels, the resumable checks and the per-epoch record. A setting left out of any of them fails here, naming it."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any, get_args

import pytest

from engine.config import SETTINGS, SETTINGS_BY_NAME, TrainConfig, to_argv
from engine.declaration import Declaration, Setting
from engine.errors import ConfigError
from engine.events import EpochEnd
from engine.presets import PRESET_SETTINGS
from engine.run_book import LABEL_SETTINGS, TIEBREAK_SETTINGS, Run, label_runs
from engine.session import RESUMABLE_CHANGES, resume_config
from engine.setting_kinds import GROUPS, KINDS, SWITCH, ChoiceKind, Group, KindName, Runs, SwitchKind
from engine.sweep import (
    DEFAULT_SEARCH,
    NOT_COMPARED,
    SEARCHABLE,
    Param,
    default_space,
    parse_search,
    train_command,
)
from tui.app.widgets.settings import FIELDS, FIELDS_BY_NAME, format_field_value, parse_value
from tui.cli import build_parser, config_from_args, parse, sweep_arguments, train_argv

NAMES = [s.name for s in SETTINGS]


def probe(declared: Setting) -> Any:
    """A valid value of the setting other than its default (so every path must carry it)."""
    default = getattr(TrainConfig(), declared.name)
    if declared.choices:  # a choice, a switch
        return next(c for c in declared.choices if c != default)
    if declared.kind == "prefixes":
        return ("probe", "第二")
    if declared.kind == "path":
        return "/nowhere/probe.txt"
    if declared.whole:
        return 7 if declared.name != "seed" else 12345
    if declared.maximum is not None:
        return 0.25
    return 0.0625 if declared.name != "temperature" else 0.75  # exact in binary: any float printing keeps it


def with_probe(name: str) -> TrainConfig:
    return TrainConfig(**{name: probe(SETTINGS_BY_NAME[name])})


def test_every_field_is_declared() -> None:
    assert [f.name for f in fields(TrainConfig)] == NAMES
    assert len(set(NAMES)) == len(NAMES)
    for declared in SETTINGS:
        # The form's label cells are 9 wide, and a restart-only setting's label gains a '*' there.
        assert declared.label and len(declared.label) <= (9 if declared.live else 8), declared.name
        assert declared.kind in get_args(KindName), declared.name
        assert declared.kind_of.name == declared.kind, declared.name
        assert declared.group in get_args(Group), declared.name
        assert declared.runs in get_args(Runs), declared.name
        assert isinstance(declared.kind_of, ChoiceKind) == bool(declared.choices), declared.name


def test_the_declaration_keywords_are_the_settings_fields() -> None:
    """setting()'s typed keywords (Declaration) and Setting's fields are one list: a field added to one only fails."""
    assert list(Declaration.__annotations__) == [f.name for f in fields(Setting) if f.name != "name"]
    assert set(KINDS) == set(get_args(KindName))
    assert list(GROUPS) == list(get_args(Group))


def test_a_switch_is_off_or_on_in_every_front_end_and_a_bool_in_the_engine() -> None:
    """tie and variational are switches: off/on on the command line, in the form and in a sweep, one bool to the
    model (SwitchKind.is_on), and a word other than off or on refused naming the setting."""
    from engine.model import model_for

    switches = [s for s in SETTINGS if s.kind == "switch"]
    assert {s.name for s in switches} == {"tie", "variational"}
    for declared in switches:
        assert declared.choices == FIELDS_BY_NAME[declared.name].choices == SWITCH == ("off", "on")
        assert getattr(parse([declared.option, "on"]), declared.name) == "on"
        entry = parse_search(f"{declared.name}=off,on")
        assert isinstance(entry, Param) and entry.choices == SWITCH
        with pytest.raises(ConfigError, match=f"{declared.name} must be one of off, on; got 'yes'"):
            TrainConfig().with_changes(**{declared.name: "yes"})
    assert SwitchKind.is_on("on") and not SwitchKind.is_on("off")
    model = model_for(TrainConfig(hidden=8, embed=4, tie="on", io_dropout=0.1, variational="on"), 20)
    assert model.variational is True and model.embed == 4 and model.embedding is not None
    plain = model_for(TrainConfig(hidden=8), 20)
    assert plain.variational is False and plain.embed == 0 and plain.embedding is None


def subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found = action.choices[name]
            assert isinstance(found, argparse.ArgumentParser)
            return found
    raise AssertionError("no subcommands")


@pytest.mark.parametrize("name", NAMES)
def test_every_setting_parses_on_every_command_line(name: str) -> None:
    declared = SETTINGS_BY_NAME[name]
    value = probe(declared)
    words = to_argv({name: value})
    assert words and words[0] == declared.option, words  # to_argv says it, and with its flag
    for command in ([], ["train"], ["serve"], ["sweep"]):
        args = build_parser().parse_args([*command, *words])
        got = getattr(args, name)
        assert (tuple(got) if isinstance(got, list) else got) == value, (command, name)
    if name != "preset":  # a preset brings its own settings: the round trip below covers it
        assert config_from_args(parse(words)) == with_probe(name)
    assert declared.option in build_parser().format_help() or name == "preset"
    assert declared.option in subcommand(build_parser(), "sweep").format_help()


@pytest.mark.parametrize("name", NAMES)
def test_to_argv_is_the_inverse_of_parsing(name: str) -> None:
    config = with_probe(name)
    assert config_from_args(parse(["train", *to_argv(config)])) == config
    assert config_from_args(parse(to_argv(config))) == config


def test_a_whole_config_of_probes_and_the_presets_round_trip() -> None:
    everything = TrainConfig(**{s.name: probe(s) for s in SETTINGS})
    assert all(getattr(everything, s.name) != getattr(TrainConfig(), s.name) for s in SETTINGS)
    assert config_from_args(parse(to_argv(everything))) == everything
    for preset in PRESET_SETTINGS:
        config = config_from_args(parse(["--preset", preset]))
        assert config_from_args(parse(to_argv(config))) == config
    assert to_argv(TrainConfig()) == []


def test_serve_passes_every_setting_to_its_sessions() -> None:
    everything = TrainConfig(**{s.name: probe(s) for s in SETTINGS})
    args = parse(["serve", *to_argv(everything), "--paused", "--threads", "2"])
    words = train_argv(args)
    again = parse(words)
    assert config_from_args(again) == everything and again.paused and again.threads == 2


@pytest.mark.parametrize("name", NAMES)
def test_every_setting_is_in_the_form(name: str) -> None:
    field = FIELDS_BY_NAME[name]  # a KeyError names the setting the form left out
    assert field.setting is SETTINGS_BY_NAME[name]
    value = probe(field.setting)
    assert parse_value(field, format_field_value(field, value)) == value
    shown = format_field_value(field, value)
    assert TrainConfig().with_changes(**{name: parse_value(field, shown)}) == with_probe(name)
    if field.kind == "choice":
        assert set(field.setting.choices) <= set(field.choices)
    assert [f.name for f in FIELDS] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_setting_has_its_place_in_the_sweep(name: str) -> None:
    declared = SETTINGS_BY_NAME[name]
    assert (name in NOT_COMPARED) == (not declared.compared)
    assert (name in SEARCHABLE) == declared.searchable
    if declared.searchable:
        value = probe(declared)
        entry = parse_search(f"{name}={format_field_value(FIELDS_BY_NAME[name], value)}")
        assert entry == (name, value)  # one value fixes it, as its flag would
    else:
        with pytest.raises(ConfigError, match="unknown parameter"):
            parse_search(f"{name}=1")
    if declared.search is not None:
        assert isinstance(parse_search(f"{name}={declared.search}"), Param)
        assert name in default_space({}).names and name not in default_space({name: probe(declared)}).names
    else:
        assert name not in default_space({}).names
    # The form's Start: a setting fixed from the form reaches the sweep's command line, and its best trial's train
    # command, unless the space searches it.
    fixed = with_probe(name).to_dict()
    assert declared.option in sweep_arguments(fixed, [], "s", None, 1, 1, 1)
    searched = f"{name}={declared.search}" if declared.search else "lr=1e-4:1e-2:log"
    arguments = sweep_arguments(fixed, [searched], "s", None, 1, 1, 1)
    assert (declared.option in arguments) == (not declared.search)
    assert declared.option in train_command({"epochs": 2}, {name: probe(declared)})


def test_the_default_space_is_the_declared_one() -> None:
    assert set(DEFAULT_SEARCH) == set(default_space({}).names)
    assert default_space({"optimizer": "sgd"}).params[0].describe() == "lr=0.01:10:log"


@pytest.mark.parametrize("name", NAMES)
def test_every_setting_has_its_place_in_the_runs_table(name: str) -> None:
    """Two runs that differ in one setting: a label or tiebreak setting names it; a report-only one does not."""
    declared = SETTINGS_BY_NAME[name]
    assert (name in LABEL_SETTINGS) == (declared.runs == "label")
    assert (name in TIEBREAK_SETTINGS) == (declared.runs == "tiebreak")
    runs: list[Run] = []
    for config in (TrainConfig(), with_probe(name)):
        figures = {s.name: getattr(config, s.name) for s in SETTINGS if s.per_epoch}
        history = (EpochEnd(1, 100.0, 1.0, 1000, **figures),)
        runs.append(Run(config, history, f"run {len(runs) + 1}"))
    labels = label_runs(runs)
    if declared.runs == "never":
        assert labels == ["run 1", "run 2"]
    else:
        assert all(label.startswith(f"{name}=") for label in labels), labels


@pytest.mark.parametrize("name", NAMES)
def test_every_setting_is_resumable_or_refused_on_resume(name: str) -> None:
    declared = SETTINGS_BY_NAME[name]
    assert (name in RESUMABLE_CHANGES) == (declared.resumable or declared.live)
    change = {name: probe(declared)}
    if name in RESUMABLE_CHANGES:
        assert getattr(resume_config(TrainConfig(), change), name) == change[name]
    else:
        with pytest.raises(Exception, match="does not fit the checkpoint"):
            resume_config(TrainConfig(), change)


@pytest.mark.parametrize("name", NAMES)
def test_settings_recorded_per_epoch_are_in_the_record(name: str) -> None:
    declared = SETTINGS_BY_NAME[name]
    record = EpochEnd(1, 100.0, 1.0, 1000, 1e-3, 0.01).record()
    assert ({"epoch", "perplexity", "val_perplexity", "chars_per_second"} | {"lr", "clip"}) <= set(record)
    assert (name in record) == declared.per_epoch
    if declared.per_epoch:
        assert declared.live  # what can change mid-run is what each epoch records


def test_engine_errors_name_the_setting_each_front_end_in_its_words() -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig(val_chars=-1)
    assert str(caught.value).startswith("val-chars must be a whole number ≥ 0")
    from engine.config import flag_name
    from tui.app.widgets.settings import form_words

    assert caught.value.worded(flag_name).startswith("--val-chars must be")
    assert form_words(caught.value).startswith("held-out must be")
