"""The Sweep screen (F12), driven by Textual's pilot: a real `rnn-tui sweep` process on the real corpus."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pilot_helpers import click_again, wait_for
from textual.widgets import DataTable, Input

from engine.config import to_argv
from tui.app import RnnTuiApp
from tui.app.screens import HelpScreen
from tui.app.screens.sweep import SweepScreen
from tui.app.screens.sweep_charts import ObjectivePlot
from tui.cli import app_options, parse

if TYPE_CHECKING:  # optuna loads in the tests that open a study
    from optuna.storages import RDBStorage
    from optuna.trial import FrozenTrial

SIZE = (100, 30)


def screen_text(app: RnnTuiApp) -> str:
    """What the screen on top shows, as text: every line as drawn."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def load_trials(storage: str, study: str) -> list[FrozenTrial]:
    import optuna

    return optuna.load_study(study_name=study, storage=storage).get_trials()


async def test_sweep_screen_starts_a_sweep_lists_its_trials_and_applies_the_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["--hidden", "16", "--max-chars", "4000", "--threads", "1", "--seed", "0", "--paused"]
    app = RnnTuiApp(app_options(parse(argv)))
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f12")
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        for name, value in (("storage", storage), ("space", "lr=0.002:0.02:log cell=rnn,gru"), ("trials", "2"),
                            ("epochs", "2")):  # fmt: skip
            screen.query_one(f"#sweep-{name}", Input).value = value
        await pilot.click("#sweep-start")
        sweep = app.sweep_state
        assert sweep is not None and sweep.running
        assert "--search lr=0.002:0.02:log" in sweep.command and "--hidden 16" in sweep.command
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count >= 1, "a trial in the table", timeout=90)
        await wait_for(pilot, lambda: screen.best_row() is not None, "a complete trial", timeout=90)
        best = screen.best_row()
        assert best is not None and best.best is not None and best.epochs == 2
        # Apply best: the trial's settings go into the form, with its seed and its own epochs (the form's 250 would
        # train far past what the trial measured; its best epoch alone would change a cosine schedule).
        app.main.settings.set_text("lr", "0.5")
        await pilot.click("#sweep-apply")
        assert app.main.settings.value("lr") == best.params["lr"]  # every digit of a sampled float
        assert len(repr(best.params["lr"])) > 8, best.params  # (a log-uniform sample: not a short decimal)
        assert app.main.settings.text_of("cell") == best.params["cell"]
        assert best.seed is not None and app.main.settings.text_of("seed") == str(best.seed)
        assert best.best_epoch in (1, 2) and app.main.settings.text_of("epochs") == "2"
        # Compare: the trial's epochs go into F10's run book.
        table.move_cursor(row=0)
        await pilot.press("ctrl+t")
        await pilot.click("#sweep-compare")
        assert any(run.origin.startswith("trial ") and len(run.history) == 2 for run in app.run_control.run_book.runs)
        await wait_for(
            pilot, lambda: (state := app.sweep_state) is not None and not state.running, "the sweep's end", timeout=90
        )
        await wait_for(pilot, lambda: screen.ended is not None, "its end reported")
        ended = screen.ended
        assert ended is not None and ended.returncode == 0 and "rnn-tui train --headless" in ended.message
        # Apply best, rerun: the form's settings trained headless on this machine give the trial's figure, every digit.
        config = app.run_control.form_config()
        assert config is not None
        rerun = subprocess.run(
            [sys.executable, "-m", "tui.main", "train", "--headless", *to_argv(config), "--threads", "1",
             "--metrics", str(tmp_path / "rerun.jsonl")], capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        epochs = [json.loads(line) for line in (tmp_path / "rerun.jsonl").read_text().splitlines()]
        assert [e["val_perplexity"] for e in epochs] == [h["val_perplexity"] for h in best.history], (epochs, best)
        assert min(e["val_perplexity"] for e in epochs) == best.best
        # ctrl+e with a text field focused (Input binds ctrl+e itself): the trials as CSV, numbers as stored.
        monkeypatch.chdir(tmp_path)
        screen.query_one("#sweep-space", Input).focus()
        await pilot.press("ctrl+e")
        with open(tmp_path / "rnn-tui-trials.csv", encoding="utf-8") as handle:
            written = list(csv.DictReader(handle))
        assert [int(r["trial"]) for r in written] == [r.number for r in screen.rows] and "lr" in written[0]
        assert written[0]["command"].startswith("rnn-tui train --headless")
        stored = {t.number: t for t in load_trials(storage, "rnn-tui")}
        for row in written:
            trial = stored[int(row["trial"])]
            assert float(row["lr"]) == trial.params["lr"] and row["machine"] == trial.user_attrs["host"]
            assert row["value"] == ("" if trial.value is None else repr(trial.value))
            started, finished = trial.datetime_start, trial.datetime_complete
            assert started is not None and finished is not None
            assert row["started"] == started.isoformat() and row["finished"] == finished.isoformat()
            assert json.loads(row["history"]) == trial.user_attrs["history"]
        # ctrl+g steps through the charts: learning curves, machines, then a slice per searched setting (its
        # importances computed).
        await pilot.press("ctrl+g")
        assert "learning curves, best 2" in screen_text(app)
        await pilot.press("ctrl+g")
        assert "machines: each trial start→end" in screen_text(app)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: "importance" in screen.message, "importances", timeout=60)
        assert screen.message.startswith("importance: "), screen.message
        assert screen.query_one(ObjectivePlot).slice_of in ("lr", "cell")
        # The sort follows a header click.
        await pilot.click("#sweep-table", offset=(12, 0))
        # A bad number is an inline error, and no process starts.
        screen.query_one("#sweep-trials", Input).value = "0"
        await click_again(pilot, "#sweep-start")
        assert "trials must be a whole number ≥ 1" in screen.message
        assert app.sweep_state is not None and not app.sweep_state.running


async def test_sweep_is_in_help_and_the_palette() -> None:
    app = RnnTuiApp(app_options(parse(["--hidden", "16", "--paused"])))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        assert ("f12", "Sweep") in [(key, description) for key, description, _ in app.screen.keys]
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Sweep (F12)" in titles


async def test_opening_a_study_that_does_not_exist_says_so(tmp_path: Path) -> None:
    app = RnnTuiApp(app_options(parse(["--hidden", "16", "--paused"])))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f12")
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        screen.query_one("#sweep-storage", Input).value = f"sqlite:///{tmp_path / 'sweeps.db'}"
        screen.query_one("#sweep-study", Input).value = "nothere"
        await pilot.click("#sweep-open")
        # It said "reading study…" and then nothing, for ever.
        await wait_for(pilot, lambda: "no study 'nothere'" in screen.message, "the missing study told", timeout=30)
        assert "Start creates it" in screen.message


def _made_study(path: Path) -> str:
    """A study with two finished trials and one running, written with Optuna directly (no training: fast)."""
    import optuna

    from engine.sweep import open_storage

    url = f"sqlite:///{path}"
    study = optuna.create_study(study_name="narrow", storage=open_storage(url), direction="minimize")
    for number, (lr, hidden, value) in enumerate([(0.000211, 64, 240.5), (0.00307, 128, 231.25), (0.001, 32, None)]):
        trial = study.ask()
        for name, chosen in (("lr", lr), ("hidden", hidden), ("layers", 2), ("dropout", 0.125), ("num_steps", 48)):
            getattr(trial, "suggest_float" if isinstance(chosen, float) else "suggest_int")(name, chosen, chosen)
        config = {"epochs": 10, "lr": lr, "hidden": hidden, "seed": 1000 + number}
        trial.set_user_attr("config", config)
        trial.set_user_attr("seed", 1000 + number)
        trial.set_user_attr("host", "lab-a" if number == 0 else "lab-b")
        history: list[dict[str, float]] = [
            {"epoch": e, "perplexity": 300.0, "val_perplexity": 250.0 - e, "seconds": 1.0, "chars": 1, "lr": lr,
             "clip": 0.01} for e in (1, 2, 3)
        ]  # fmt: skip
        trial.set_user_attr("history", history)
        for entry in history:
            trial.report(entry["val_perplexity"], int(entry["epoch"]))
        if value is not None:
            study.tell(trial, value)
    return url


async def test_params_readable_at_80x24_and_the_password_never_shown(tmp_path: Path) -> None:
    url = _made_study(tmp_path / "sweeps.db")
    app = RnnTuiApp(app_options(parse(["--hidden", "16", "--paused"])))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f12")
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        storage = screen.query_one("#sweep-storage", Input)
        storage.value = url
        screen.query_one("#sweep-study", Input).value = "narrow"
        await pilot.click("#sweep-open")
        await wait_for(pilot, lambda: len(screen.rows) == 3, "the study's trials")
        await wait_for(pilot, lambda: screen.message == "study 'narrow': 3 trials", "the study told")
        # Every setting of the trial under the cursor is readable, however narrow the table's column.
        table = screen.query_one(DataTable)
        table.move_cursor(row=0)
        await pilot.pause()
        detail = str(screen.query_one("#sweep-detail").render())
        for text in ("lr=0.000211", "hidden=64", "layers=2", "dropout=0.125", "num_steps=48", "seed 1000"):
            assert text in detail.replace("\n", " "), detail
        # The running trial shows its epoch out of its planned ones.
        assert table.get_row("2")[4] == "3/10"
        # A password typed into the storage field is masked once read, in the field and in every message.
        storage.value = "postgresql://class:hunter2@127.0.0.1:1/rnn"
        await click_again(pilot, "#sweep-open")
        await wait_for(pilot, lambda: "cannot open storage" in screen.message, "the refused connection", timeout=30)
        assert "hunter2" not in screen.message and "hunter2" not in storage.value and "***" in storage.value
        sweep = app.sweep_state
        assert sweep is not None and sweep.storage.endswith("class:hunter2@127.0.0.1:1/rnn")  # kept, for next Start


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_f12_charts_read_whole_at_80x24_and_100x30_through_one_database_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    """Learning curves of the best trials, the machines' timeline and a slice per searched setting, each readable at
    both sizes beside the table; every read of the storage goes through one database engine."""
    import engine.sweep.study as study_module

    monkeypatch.chdir(tmp_path)
    url = _made_study(tmp_path / "sweeps.db")
    opened: list[str] = []
    real_open = study_module.open_storage

    def counted(storage: str, write: bool = True) -> RDBStorage:
        opened.append(storage)
        return real_open(storage, write)

    monkeypatch.setattr(study_module, "open_storage", counted)
    app = RnnTuiApp(app_options(parse(["--hidden", "16", "--paused"])))
    async with app.run_test(size=size) as pilot:
        await pilot.press("f12")
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        screen.query_one("#sweep-storage", Input).value = url
        screen.query_one("#sweep-study", Input).value = "narrow"
        await pilot.click("#sweep-open")
        await wait_for(pilot, lambda: len(screen.rows) == 3, "the study's trials")
        before = opened.count(url)
        await pilot.pause(3.5)  # three more reads, a second apart
        assert opened.count(url) == before == 1, opened
        await pilot.press("ctrl+g")
        text = screen_text(app)
        assert "learning curves, best 3" in text and "#0" in text and "#1" in text and "#2" in text, text
        assert "Apply best" in text and "Compare" in text  # the whole screen still reads
        await pilot.press("ctrl+g")
        text = screen_text(app)
        assert "machines: each trial start→end" in text and "lab-a" in text and "lab-b" in text, text
        shown: list[str] = []
        for _ in range(len(screen.searched())):
            await pilot.press("ctrl+g")
            slice_of = screen.query_one(ObjectivePlot).slice_of
            assert slice_of is not None
            shown.append(slice_of)
            assert f"against {shown[-1]}" in screen_text(app)
        assert sorted(shown) == ["hidden", "lr"]  # the settings that vary; layers, dropout, num_steps do not
        await pilot.press("ctrl+g")
        assert "per trial" in screen_text(app)
