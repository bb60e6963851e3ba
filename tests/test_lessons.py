"""Lessons on the real corpus: each runs a short version (tiny model, few epochs) and its observation names numbers
from that very run, checked against figures computed here from the run (not from the observation's own code); the
command line's --lesson, --observations (a class's CSV) and rnn-tui lessons; a bad lesson name is one line, exit 2."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from test_bad_inputs import assert_one_line_error, run_main

from engine import events
from engine.config import preset_config
from engine.lessons import LESSONS, LESSONS_BY_NAME, Lesson, find_lesson
from engine.observations import shown
from engine.session import Session, open_session
from tui.cli import app_options, config_from_args, parse
from tui.lesson_report import lesson_run
from tui.main import main

SHORT = {"hidden": 16, "max_chars": 2_000, "val_chars": 300, "epochs": 3}
# What a lesson's short version keeps of its own settings: one-hot's point is the whole corpus's vocabulary.
KEEP = {"one-hot": ("max_chars",)}


def held_out(epoch: events.EpochEnd) -> float:
    """An epoch's held-out perplexity (every epoch of these runs has one)."""
    assert epoch.val_perplexity is not None, epoch.epoch
    return epoch.val_perplexity


def short_run(lesson: Lesson, **more: object) -> tuple[Session, list[events.Event]]:
    short = {k: v for k, v in SHORT.items() if k not in KEEP.get(lesson.name, ())}
    seen: list[events.Event] = []
    session = open_session(lesson.overrides({**short, **more}), listener=seen.append)
    session.trainer.run()
    return session, seen


def generated(record_sample: tuple[str, str]) -> str:
    prefix, text = record_sample
    return text[len(prefix) :]


def test_there_are_at_least_six_lessons_each_a_valid_preset_that_parses_back() -> None:
    assert len(LESSONS) >= 6
    for lesson in LESSONS:
        config = lesson.config()
        assert parse(lesson.argv()) is not None
        assert config_from_args(parse(lesson.argv())) == config  # the preset goes through the declarations
        assert lesson.question.endswith("?") and lesson.watch and lesson.exercise
        for name, value in lesson.settings.items():
            assert getattr(config, name) == value


@pytest.mark.parametrize("name", [lesson.name for lesson in LESSONS])
def test_each_lesson_runs_short_and_observes_its_own_numbers(name: str) -> None:
    lesson = LESSONS_BY_NAME[name]
    more: dict[str, object] = {"pred_period": 1} if name in ("untrained-writer", "temperature") else {}
    if name == "one-hot":  # the whole corpus: one epoch, a small held-out share
        more = {"epochs": 1, "val_fraction": 0.02, "pred_len": 5}
    if name == "generalise":  # the whole-en preset's 64-step sequences, shorter
        more = {"num_steps": 16}
    session, seen = short_run(lesson, **more)
    trainer = session.trainer
    failed = [e for e in seen if isinstance(e, events.Failed)]
    observation = lesson.observe(lesson_run(trainer, failed[0].message if failed else ""))
    history = trainer.state.history
    text, figure = observation.text, observation.figure
    assert set(dict(observation.figures)) == set(lesson.figure_names)
    if name == "no-clipping":
        best = min(history, key=lambda e: e.perplexity)
        assert figure("best_epoch") == best.epoch and figure("best") == best.perplexity
        assert f"fell to {shown(best.perplexity)} at epoch {best.epoch}" in text
    elif name == "untrained-writer":
        first = trainer.timeline()[0]
        assert figure("first_epoch") == 1 == first.epoch
        assert figure("first_distinct") == len(set(generated(first.samples[0])))
        distinct = len(set(generated(first.samples[0])))
        assert f"at epoch 1 your model wrote {distinct} distinct character" in text
        assert repr(generated(first.samples[0])[:16]) in text
    elif name == "carried-state":
        last = history[-1]  # the last epoch samples, so it has the whole-text figure the verdict reads
        assert last.horizon_perplexity is not None
        assert (figure("train"), figure("fresh")) == (last.perplexity, last.fresh_perplexity)
        assert figure("whole") == last.horizon_perplexity
        assert figure("ratio") == last.horizon_perplexity / last.perplexity
        assert shown(last.perplexity) in text and shown(last.horizon_perplexity) in text
        trapped = last.horizon_perplexity >= 2 * last.perplexity  # the one threshold, engine.events.TRAP_RATIO
        assert ("No trap (yet)" in text) != trapped
    elif name == "memorisation":
        best = min(history, key=held_out)
        assert (figure("best_epoch"), figure("best_held_out")) == (best.epoch, best.val_perplexity)
        assert f"best at epoch {best.epoch} ({shown(held_out(best))})" in text
    elif name == "cells":
        params = sum(p.numel() for p in trainer.model.parameters())  # counted from the model itself
        assert trainer.config.cell == "lstm" and figure("parameters") == params
        assert f"{params:,} parameters" in text
    elif name == "temperature":
        assert figure("last_temperature") == "1"
        assert "at temperature 1," in text
    elif name == "one-hot":
        vocab = len(trainer.vocab)
        assert vocab > 2_000  # the whole corpus's, against the book's 1,027
        assert figure("vocab") == vocab and figure("input_weights") == trainer.model.layer_weights(0).w_ih.numel()
        assert f"your vocabulary has {vocab:,} characters" in text
    elif name == "generalise":
        last = history[-1]
        assert last.test_perplexity is not None and figure("test") == last.test_perplexity
        assert figure("step") == "a run of your own"  # the short run's settings are none of the ladder's steps
        assert f"a run of your own: test perplexity {shown(last.test_perplexity)}" in text
        order, counting = figure("counting_order"), figure("counting_test")
        assert isinstance(order, int) and isinstance(counting, float)  # counting on the run's own test text
        assert f"counting ({order}-gram) gets {shown(counting)} on the same test text" in text
    else:  # pragma: no cover - a new lesson needs its row here
        pytest.fail(f"no check for lesson {name}")


def test_clipping_off_diverges_and_the_observation_says_where() -> None:
    # The book's model diverges in epoch 9 at lr 1 (README); a tiny one needs a larger step to do it in 3 epochs.
    session, seen = short_run(find_lesson("no-clipping"), hidden=32, lr=30.0, seed=1)
    failed = [e for e in seen if isinstance(e, events.Failed)]
    assert failed and "diverged" in failed[0].message
    observation = find_lesson("no-clipping").observe(lesson_run(session.trainer, failed[0].message))
    assert observation.figure("diverged_epoch") == failed[0].epoch
    assert f"diverged in epoch {failed[0].epoch} with clip 0" in observation.text


def test_headless_lesson_prints_its_observation_and_a_class_collects_one_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "class.csv"
    words = ["train", "--headless", "--lesson", "memorisation", "--hidden", "16", "--max-chars", "2000"]
    words += ["--val-chars", "300", "--epochs", "3", "--observations", str(table), "--metrics", str(tmp_path / "m")]
    for _seat in range(2):
        assert main(words) == 0
    out = capsys.readouterr()
    said = [line for line in out.out.splitlines() if line.startswith("lesson memorisation:")]
    assert len(said) == 2 and "question:" in out.err
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert len(rows) == 2 and rows[0]["lesson"] == "memorisation"
    import json

    epochs = [json.loads(line) for line in (tmp_path / "m").read_text().splitlines()][:3]
    best = min(epochs, key=lambda e: e["val_perplexity"])
    assert int(rows[0]["best_epoch"]) == best["epoch"]
    assert float(rows[0]["best_held_out"]) == pytest.approx(best["val_perplexity"], rel=1e-5)
    # Another lesson's observation is not mixed into this class's file: one warning line, the file unchanged.
    before = table.read_text(encoding="utf-8")
    other = ["train", "--headless", "--lesson", "cells", "--hidden", "8", "--max-chars", "2000", "--val-chars"]
    assert main([*other, "300", "--epochs", "1", "--observations", str(table)]) == 0
    assert "collects another lesson's observations" in capsys.readouterr().err
    assert table.read_text(encoding="utf-8") == before


def test_an_explicit_flag_wins_over_the_lesson_and_the_app_gets_the_lesson() -> None:
    args = parse(["--lesson", "cells", "--hidden", "32"])
    options = app_options(args)
    assert (options.config.cell, options.config.hidden, options.lesson) == ("lstm", 32, "cells")
    assert options.config == preset_config({"cell": "lstm", "hidden": 32, "epochs": 50, "seed": 1})


@pytest.mark.parametrize(
    "argv",
    [
        ["--lesson", "nope"],
        ["train", "--headless", "--lesson", "nope"],
        ["serve", "--lesson", "nope"],
        ["train", "--headless", "--observations", "x.csv"],
        ["sweep", "--lesson", "memorisation"],
    ],
)
def test_a_bad_lesson_is_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "lesson")


def test_rnn_tui_lessons_lists_every_lesson(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lessons"]) == 0
    out = capsys.readouterr().out
    for lesson in LESSONS:
        assert f"{lesson.name}: {lesson.title}" in out
        assert " ".join(lesson.argv()) in out


def test_serve_lesson_gives_every_seat_the_lesson_and_one_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.serve.settings import settings_from_args

    monkeypatch.chdir(tmp_path)
    settings = settings_from_args(parse(["serve", "--lesson", "memorisation", "--workdir", str(tmp_path / "work")]))
    flags = settings.app_flags
    table = str(tmp_path / "observations-memorisation.csv")  # in the teacher's directory: sessions' go with tabs
    assert flags[flags.index("--lesson") + 1] == "memorisation"
    assert flags[flags.index("--observations") + 1] == table == settings.observations
    seat = app_options(parse(flags))  # what each session's app is started with
    assert (seat.lesson, seat.observations) == ("memorisation", table)
    assert seat.config == find_lesson("memorisation").config()


def test_an_observations_file_that_is_not_a_csv_is_one_warning_and_left_alone(
    tmp_path: Path, corpus_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "lyrics.zip"
    binary.write_bytes(corpus_path.read_bytes())
    words = ["train", "--headless", "--lesson", "one-hot", "--hidden", "8", "--max-chars", "2000", "--epochs", "1"]
    assert main([*words, "--val-chars", "300", "--observations", str(binary)]) == 0
    err = capsys.readouterr().err
    assert "rnn-tui: warning:" in err and "is not a CSV of observations" in err and "Traceback" not in err
    assert binary.read_bytes() == corpus_path.read_bytes()


def test_a_served_seat_signs_its_row_with_its_session_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.lesson_report import seat_name
    from tui.served import SESSION_DIR_ENV

    monkeypatch.setenv(SESSION_DIR_ENV, "/srv/class/rnn-tui-seat-k3x9/")
    assert seat_name() == "rnn-tui-seat-k3x9"
    monkeypatch.delenv(SESSION_DIR_ENV)
    assert seat_name() and "/" not in seat_name()
