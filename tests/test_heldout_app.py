"""The app's held-out views, driven by Textual's pilot: the status panel's three perplexities, the plot's curves and
best-epoch line, the preset selector filling the form, the runs compared with held-out curves and CSV columns.

The app runs on the real corpus, paused (nothing trains); the held-out figures are EpochEnd events built here and
handed to the app as the trainer's would be, so each view is checked against known numbers.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from pilot_helpers import shown_text, wait_for
from textual.pilot import Pilot
from textual.widgets import Input, Select

from engine import events
from engine.config import STATE_POLICIES
from engine.presets import PRESET_SETTINGS
from engine.run_book import Run
from tui.app import RnnTuiApp
from tui.app.screens import HelpScreen
from tui.app.screens.runs_compared import HELD_OUT_MARKER, TRAIN_MARKER, OverlayPlot, RunsScreen
from tui.cli import app_options, parse

SIZE = (100, 30)
FAST = ["--hidden", "64", "--threads", "1", "--seed", "0", "--paused"]

# A run that memorises: training perplexity falls, held-out bottoms out at epoch 3 then climbs.
TRAIN = [900.0, 400.0, 200.0, 90.0, 30.0, 8.0]
HELD_OUT = [950.0, 520.0, 310.0, 420.0, 900.0, 2600.0]
FRESH = [905.0, 430.0, 260.0, 150.0, 80.0, 40.0]
UNSEEN = 0.1234


def held_out_history() -> list[events.EpochEnd]:
    return [
        events.EpochEnd(epoch, train, 0.5, 8960, 1e-3, 0.01, val, fresh, UNSEEN)
        for epoch, (train, val, fresh) in enumerate(zip(TRAIN, HELD_OUT, FRESH, strict=True), start=1)
    ]


async def paused_app(pilot: Pilot[int], app: RnnTuiApp) -> None:
    """Wait until the paused run's trainer is built and its Started event shown: no real event comes after."""
    await wait_for(
        pilot, lambda: app.run_control.status.state == "paused" and app.run_control.config is not None, "paused start"
    )


def data_columns_with(mark: str, chart_text: str) -> bool:
    """mark appears inside the plot area (right of the y axis) of a plotext chart's text."""
    for line in chart_text.splitlines():
        axis = max(line.find("┤"), line.find("│") if line.lstrip().startswith("│") else -1)
        if axis >= 0 and mark in line[axis + 1 :]:
            return True
    return False


async def test_status_and_plot_show_train_fresh_and_held_out() -> None:
    app = RnnTuiApp(app_options(parse([*FAST, "--epochs", "6"])))
    async with app.run_test(size=SIZE) as pilot:
        await paused_app(pilot, app)
        # Held-out evaluation off: the book's one figure, no empty held-out fields, no legend.
        app.run_control.apply_event(events.EpochEnd(1, 900.0, 0.5, 8960, 1e-3, 0.01))
        app.main.plot.redraw(force=True)
        shown = app.main.status.render_status().plain
        assert "perplexity 900.00" in shown
        assert "None" not in shown and "held-out" not in shown and "fresh" not in shown
        assert app.main.plot.drawn == ["train"] and not app.main.plot.border_subtitle

        app.main.plot.reset()
        for event in held_out_history():
            app.run_control.apply_event(event)
        app.main.plot.redraw(force=True)
        await pilot.pause()
        shown = app.main.status.render_status().plain
        assert "train 8.00" in shown and "fresh 40.00" in shown and "held-out 2,600.00" in shown
        assert "best 310.00 at epoch 3" in shown  # the lowest held-out figure, not the latest
        assert "12.3% unseen left out" in shown  # how unseen characters were counted, beside the figure
        assert app.run_control.status.best_val == (3, 310.0)
        app.run_control.status.unseen_counted = True  # the English edition's vocabulary: unseen characters are <unk>
        assert "12.3% unseen as <unk>" in app.main.status.render_status().plain
        app.run_control.status.unseen_counted = False

        plot = app.main.plot
        assert plot.drawn == ["fresh", "held-out", "train"]
        assert plot.held_out == list(enumerate(HELD_OUT, start=1)) and plot.best == (3, 310.0)
        assert "epoch 6" in str(plot.border_title)
        legend = str(plot.border_subtitle)
        assert re.fullmatch(r"⣀ ?train +• ?held-out +· ?fresh +│ ?best (epoch )?3", legend), legend
        assert plot.chart is not None
        chart = shown_text(plot.chart)  # what the panel shows
        for mark in ("•", "·", "│"):  # held-out bullets, fresh-state dots, the best epoch's line: not colour alone
            assert data_columns_with(mark, chart), f"{mark!r} not drawn in:\n{chart}"

        # The run stops on its own (patience): the status says why, and so do the samples.
        reason = "stopped early at epoch 6: held-out perplexity has not improved for 3 epochs (best 310.00 at 3)"
        app.run_control.apply_event(events.Finished(6, stopped=False, reason=reason))
        shown = " ".join(app.main.status.render_status().plain.split())  # the reason wraps over lines
        assert "finished" in shown and "held-out perplexity has not improved for 3 epochs (best 310.00 at 3)" in shown
        assert any("has not improved" in line for line in app.main.samples.lines_written)


async def test_preset_selection_fills_the_form_and_help_explains_the_figures() -> None:
    app = RnnTuiApp(app_options(parse([*FAST, "--epochs", "3"])))
    async with app.run_test(size=SIZE) as pilot:
        await paused_app(pilot, app)  # the form shows the run's settings; nothing reloads it after this
        form = app.main.settings
        form.set_text("corpus", "/data/jaychou_lyrics.txt.zip")
        labels = [shown_text(label) for label in form.query(".setting-label")]
        assert "preset*" in labels and "prefixes" in labels  # preset applies on restart, prefixes live
        state = form.widget("state")
        assert isinstance(state, Select) and [value for _, value in state._options] == list(STATE_POLICIES)

        form.widget("preset").value = "d2l-en"
        await wait_for(pilot, lambda: form.text_of("hidden") == "32", "the English edition's settings")
        english = PRESET_SETTINGS["d2l-en"]
        expected = {
            "hidden": "32",
            "optimizer": "sgd",
            "lr": "1",
            "clip": "1",
            "epochs": str(english["epochs"]),
            "batch_size": "1024",
            "num_steps": "32",
            "sampling": "windows",
            "state": "batch",
            "val_chars": "5000",
            "max_chars": "10000",
            "pred_period": "100",
            "pred_len": "20",
            "prefixes": "it has",
            "corpus": "",  # the preset's own text, not the path given for the other one
        }
        assert {name: form.text_of(name) for name in expected} == expected
        await pilot.pause()
        assert form.widget("hidden").has_class("-pending") and form.widget("preset").has_class("-pending")

        form.widget("preset").value = "d2l-zh"
        await wait_for(pilot, lambda: form.text_of("hidden") == "256", "the Chinese edition's settings")
        assert form.text_of("optimizer") == "adam" and form.text_of("state") == "carry"
        assert form.text_of("prefixes") == "分开, 不分开" and form.text_of("sampling") == "consecutive"

        # Showing a config (a run began, a checkpoint continued) is not choosing its preset: its values stay.
        form.load(app.run_control.base_config.with_changes(preset="d2l-en", hidden=48, state="epoch"))
        await pilot.pause(0.2)
        assert form.text_of("preset") == "d2l-en" and form.text_of("hidden") == "48" and form.text_of("lr") == "0.001"

        form.widget("val_chars").value = "-5"
        await pilot.pause()
        assert "held-out must be a whole number ≥ 0" in form.errors["val_chars"]  # the form's name for it

        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = shown_text(app.screen.query_one("#help-settings"))
        for needle in ("train", "fresh-state", "held-out", "never trained on", "d2l-zh", "d2l-en", "The Time Machine"):
            assert needle in text
        assert "held-out" in text.split("On restart")[1]  # the new fields are listed with the restart settings


async def test_runs_compared_overlays_held_out_curves_and_exports_them(tmp_path: Path) -> None:
    app = RnnTuiApp(app_options(parse([*FAST, "--epochs", "6"])))
    async with app.run_test(size=SIZE) as pilot:
        await paused_app(pilot, app)
        config = app.run_control.base_config.with_changes(val_chars=5000)
        history = tuple(held_out_history())
        no_held_out = tuple(events.EpochEnd(e.epoch, e.perplexity, 0.5, 8960, 1e-3, 0.01) for e in history[:4])
        app.run_control.run_book.add(Run(config, history, "run 1"))
        app.run_control.run_book.add(
            Run(config.with_changes(cell="gru", val_chars=0), no_held_out, "run 2")
        )  # held-out off
        await pilot.press("f10")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        plot = screen.query_one(OverlayPlot)
        labels = screen.book.labels()
        assert labels == ["cell=rnn val_chars=5000", "cell=gru val_chars=0"]
        assert plot.drawn == [
            ("cell=rnn val_chars=5000 held-out", HELD_OUT_MARKER),
            ("cell=rnn val_chars=5000", TRAIN_MARKER),
            ("cell=gru val_chars=0", TRAIN_MARKER),
        ]
        assert "• held-out" in shown_text(plot)  # the title names the marks
        assert "held-out best 310.0 at epoch 3" in screen.describe(0, labels[0])

        path = tmp_path / "runs.csv"
        screen.query_one("#runs-csv", Input).value = str(path)
        screen.query_one("#runs-csv").focus()
        await pilot.press("enter")
        assert screen.error is None and screen.exported == str(path)
        rows = list(csv.reader(path.open(encoding="utf-8")))
        assert rows[0] == [
            "epoch",
            "cell=rnn val_chars=5000",
            "cell=rnn val_chars=5000 held-out",
            "cell=rnn val_chars=5000 fresh",
            "cell=gru val_chars=0",
        ]
        assert [float(row[2]) for row in rows[1:]] == HELD_OUT
        assert [float(row[3]) for row in rows[1:]] == FRESH
        assert [row[4] for row in rows[1:]] == [repr(v) for v in TRAIN[:4]] + ["", ""]


async def test_real_runs_show_held_out_figures_and_the_english_preset_trains_on_the_time_machine() -> None:
    app = RnnTuiApp(app_options(parse(["--hidden", "64", "--threads", "1", "--seed", "0", "--epochs", "2"])))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "2 epochs of the book run")
        last = app.run_control.epochs_seen[-1]
        assert last.val_perplexity is not None and last.fresh_perplexity is not None
        shown = app.main.status.render_status().plain
        assert f"held-out {last.val_perplexity:,.2f}" in shown and f"fresh {last.fresh_perplexity:,.2f}" in shown
        config = app.run_control.config
        assert config is not None
        assert "unseen left out" in shown and f"{config.val_chars:,} held out" in shown
        await wait_for(pilot, lambda: "held-out" in app.main.plot.drawn, "the held-out curve")

        assert ("X", "(35, 32, 1027)") in app.main.shapes.rows_shown
        app.main.settings.widget("preset").value = "d2l-en"
        await wait_for(pilot, lambda: app.main.settings.text_of("hidden") == "32", "the English edition's settings")
        # The Shapes preview of the form's settings has the English edition's vocabulary before F7: 28, not 1,027.
        await wait_for(pilot, lambda: ("X", "(32, 1024, 28)") in app.main.shapes.rows_shown, "the d2l-en preview")
        await pilot.press("f7")
        await pilot.press("enter")  # confirm: a new preset starts from scratch
        await wait_for(
            pilot,
            lambda: (
                (config := app.run_control.config) is not None
                and config.preset == "d2l-en"
                and len(app.run_control.epochs_seen) >= 2
            ),
            "d2l-en",
        )
        await pilot.press("f8")
        status = app.run_control.status
        assert status.vocab_size == 28 and "timemachine" in status.corpus  # letters, space and <unk>
        config = app.run_control.config
        assert config is not None and config.hidden == 32 and config.sampling == "windows"
        assert "unseen as <unk>" in app.main.status.render_status().plain
        # The generate box offers the run's own prefix: 分开 has no letters of The Time Machine.
        assert app.main.generate_box.query_one("#prefix", Input).value == "it has"


async def test_the_shapes_preview_reads_another_presets_vocabulary_after_a_stop() -> None:
    """A stopped run is a cancelled one: the preview's corpus read must not take that as its own cancellation."""
    app = RnnTuiApp(app_options(parse(["--hidden", "64", "--threads", "1", "--seed", "0", "--epochs", "500"])))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 1, "the first epoch")
        await pilot.press("f8")
        await wait_for(pilot, lambda: app.run_control.status.state == "stopped", "the stop")
        app.main.settings.widget("preset").value = "d2l-en"
        await wait_for(pilot, lambda: ("X", "(32, 1024, 28)") in app.main.shapes.rows_shown, "the d2l-en preview")


def test_the_app_opened_with_a_preset_starts_from_that_presets_settings() -> None:
    # The form shows these before the run is ready, and F7 reads the form: they must be the preset's.
    app = RnnTuiApp(app_options(parse(["--preset", "d2l-en", "--paused", "--epochs", "3"])))
    preset = PRESET_SETTINGS["d2l-en"]
    assert (
        app.run_control.base_config.hidden,
        app.run_control.base_config.batch_size,
        app.run_control.base_config.optimizer,
    ) == (
        preset["hidden"],
        preset["batch_size"],
        preset["optimizer"],
    )
    assert app.run_control.base_config.epochs == 3  # an explicit flag still wins
