"""The insight screens in the app (F4 next character, F9 hidden units, F10 runs compared), on the real corpus.

Each test trains a small model in the real app for a few epochs, then opens a screen with its key and checks
that what it shows is what the engine computes for those weights.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from pilot_helpers import wait_for
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, SelectionList, Static

from engine.activations import display_scale, read_activations
from engine.config import TrainConfig
from engine.data.corpus import Corpus
from engine.explain import explain_text
from engine.trainer import Trainer
from tui.app import RnnTuiApp
from tui.app.screens.hidden_units import CORPUS_STRETCH, HiddenUnitsScreen, activation_style
from tui.app.screens.next_char import NextCharScreen
from tui.app.screens.runs_compared import RunsScreen
from tui.cli import app_options, parse

SIZE = (110, 34)
FAST = ["--hidden", "64", "--threads", "1", "--seed", "0", "--lr", "0.01", "--pred-len", "0"]


def make_app(*flags: str) -> RnnTuiApp:
    return RnnTuiApp(app_options(parse([*FAST, *flags])))


def state(app: RnnTuiApp) -> str:
    return app.run_control.status.state


async def generate(pilot: Pilot[int], app: RnnTuiApp, prefix: str, length: int, temperature: str = "") -> str:
    app.query_one("#prefix", Input).value = prefix
    app.query_one("#gen-length", Input).value = str(length)
    app.query_one("#gen-temperature", Input).value = temperature
    box = app.main.generate_box
    await pilot.press("f2", "enter")
    await wait_for(pilot, lambda: box.last_text is not None or box.last_error is not None, "generation")
    assert box.last_error is None, box.last_error
    return box.last_text or ""


async def test_next_character_view_explains_the_generated_text() -> None:
    app = make_app("--epochs", "5")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "5 epochs")
        text = await generate(pilot, app, "分开", 20, temperature="1.0")
        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, NextCharScreen)
        await wait_for(pilot, lambda: bool(screen.steps) or screen.error is not None, "explanation")
        assert screen.error is None
        # The text shown in the box, character by character, with the engine's distributions for these weights.
        assert "".join(step.chosen for step in screen.steps) == text[2:]
        trainer, vocab = app.run_control.trainer, app.run_control.vocab
        assert trainer is not None and vocab is not None
        expected = explain_text(trainer.model, vocab, text, start=2, temperature=1.0, k=8)
        assert [s.probability for s in screen.steps] == pytest.approx([s.probability for s in expected], abs=1e-5)
        assert [s.candidates[0].char for s in screen.steps] == [s.candidates[0].char for s in expected]
        table = screen.query_one(DataTable)
        assert table.row_count == 20
        detail = screen.detail_shown.plain
        assert "the model expected" in detail and "entropy" in detail
        first = screen.steps[0]
        assert f"{first.candidates[0].probability:6.1%}" in detail
        await pilot.press("down", "down")
        assert table.cursor_row == 2
        detail = screen.detail_shown.plain
        assert f"{screen.steps[2].candidates[0].probability:6.1%}" in detail
        shown = screen.text_shown
        reversed_spans = [span for span in shown.spans if "reverse" in str(span.style)]
        assert [(span.start, span.end) for span in reversed_spans] == [(4, 5)]  # the third generated character
        await pilot.press("escape")
        assert not isinstance(app.screen, NextCharScreen)

        # A bad temperature in the box: one inline line, no screen.
        app.query_one("#gen-temperature", Input).value = "hot"
        await pilot.press("f4")
        assert not isinstance(app.screen, NextCharScreen)
        assert "temperature must be a number" in (app.main.generate_box.last_error or "")


async def test_next_character_view_generates_greedy_when_nothing_was_generated() -> None:
    app = make_app("--epochs", "3")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "3 epochs")
        app.query_one("#gen-length", Input).value = "30"
        await pilot.press("f4")
        greedy = app.screen
        assert isinstance(greedy, NextCharScreen)
        await wait_for(pilot, lambda: bool(greedy.steps) or greedy.error is not None, "explanation")
        assert len(greedy.steps) == 30
        assert all(step.rank == 1 for step in greedy.steps)  # greedy takes the favourite every time
        subtitle = greedy.query_one("#next-box").border_subtitle or ""
        assert "greedy" in subtitle
        if greedy.loop is not None:  # an undertrained model repeats itself: the view says so, on a line of its own
            loop_line = greedy.query_one("#next-loop", Static)
            assert loop_line.display and "↻ loop" in str(loop_line.render()) and "↻ loop" not in subtitle
        await pilot.press("escape")

        # A length the generate box would cap: the view explains the first 1,000 characters and says so.
        app.query_one("#gen-length", Input).value = "20000"
        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, NextCharScreen)
        await wait_for(pilot, lambda: bool(screen.steps) or screen.error is not None, "a long explanation")
        assert screen.error is None and len(screen.steps) == 1_000
        assert "the first 1,000 of 20,000 characters" in (screen.query_one("#next-box").border_subtitle or "")


async def test_next_character_view_samples_without_touching_torchs_global_generator() -> None:
    """A run training with dropout draws its masks from torch's global generator: F4 must not shift them."""
    app = make_app("--epochs", "2")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "2 epochs")
        app.query_one("#gen-length", Input).value = "40"
        app.query_one("#gen-temperature", Input).value = "1.0"
        before = torch.get_rng_state()
        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, NextCharScreen)
        await wait_for(pilot, lambda: bool(screen.steps) or screen.error is not None, "explanation")
        assert len(screen.steps) == 40
        assert any(step.rank > 1 for step in screen.steps)  # it sampled: not always the favourite
        assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
async def test_hidden_unit_view_colours_the_corpus_by_the_engines_state(cell: str) -> None:
    app = make_app("--epochs", "3", "--cell", cell)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "3 epochs")
        await pilot.press("f9")
        screen = app.screen
        assert isinstance(screen, HiddenUnitsScreen)
        await wait_for(pilot, lambda: screen.activations is not None or screen.error is not None, "activations")
        assert screen.error is None
        trainer, vocab, activations = app.run_control.trainer, app.run_control.vocab, screen.activations
        assert trainer is not None and vocab is not None and activations is not None
        corpus_text = trainer.corpus.text[:CORPUS_STRETCH]
        assert activations.text == corpus_text
        # The first suggestion is shown: the unit that varies most over the text.
        reference = read_activations(trainer.model, vocab, corpus_text)
        assert screen.unit == int(reference.layer("h").std(0).argmax())
        # Its colours are its activation: the engine's state, computed in one recurrent() pass here.
        with torch.no_grad():
            outputs, _ = trainer.model.recurrent(torch.tensor(vocab.encode(corpus_text)).view(-1, 1))
        values = outputs[:, 0, screen.unit].tolist()
        assert activations.unit(screen.unit) == pytest.approx(values, abs=1e-5)
        coloured = screen.coloured
        assert coloured.plain == corpus_text.replace(" ", "␣")
        scale = display_scale(values)
        for span in coloured.spans[:50]:
            assert span.style == activation_style(values[span.start], scale)

        await pilot.click("#units-unit")
        screen.query_one("#units-unit", Input).value = "5"
        await pilot.press("enter")
        assert screen.unit == 5
        await pilot.press("]")
        assert screen.unit == 6
        assert screen.query_one("#units-unit", Input).value == "6"
        assert not isinstance(app.focused, Input)  # Enter left the digits box, so [ and ] step at once
        await pilot.click("#units-unit")
        screen.query_one("#units-unit", Input).value = "640"
        await pilot.press("enter")
        assert screen.error == "unit must be between 0 and 63, got 640" and screen.unit == 6

        kinds = screen.query_one("#units-kind", Select)
        if cell == "lstm":  # the cell state too: unbounded, so the colour scale follows its largest value
            kinds.value = "c"
            await pilot.pause(0.1)
            assert screen.kind == "c"
            c_values = activations.unit(screen.unit, "c")
            assert c_values == pytest.approx(reference.unit(screen.unit, "c"), abs=1e-5)
        else:
            assert [value for _, value in kinds._options] == ["h"]
        await pilot.press("escape")
        assert not isinstance(app.screen, HiddenUnitsScreen)


async def test_runs_compared_overlays_finished_runs_and_exports_csv(tmp_path: Path) -> None:
    app = make_app("--epochs", "2")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "first run")
        trainer, shown_config = app.run_control.trainer, app.run_control.config
        assert trainer is not None and shown_config is not None
        first = list(trainer.state.history)
        config = shown_config.with_changes(cell="gru", epochs=3)
        app.main.settings.load(config)
        await pilot.press("f7")
        await pilot.press("enter")  # confirm: a new cell starts from scratch
        await wait_for(
            pilot,
            lambda: state(app) == "finished" and (run := app.run_control.config) is not None and run.cell == "gru",
            "second run",
        )
        trainer = app.run_control.trainer
        assert trainer is not None
        second = list(trainer.state.history)
        await pilot.press("f10")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        series = screen.book.overlay()
        assert [s.label for s in series] == ["cell=rnn", "cell=gru"]
        assert list(series[0].values) == [e.perplexity for e in first]
        assert list(series[1].values) == [e.perplexity for e in second]
        assert screen.query_one(SelectionList).selected == [0, 1]

        screen.query_one("#runs-csv", Input).value = str(tmp_path / "compare.csv")
        screen.query_one("#runs-csv", Input).focus()
        await pilot.press("enter")
        assert screen.error is None and screen.exported == str(tmp_path / "compare.csv")
        rows = list(csv.reader((tmp_path / "compare.csv").open(encoding="utf-8")))
        # Each run's training perplexity, then its held-out and fresh-state figures (held-out evaluation is on).
        assert rows[0] == [
            "epoch",
            *("cell=rnn", "cell=rnn held-out", "cell=rnn fresh"),
            *("cell=gru", "cell=gru held-out", "cell=gru fresh"),
        ]
        assert [float(v) for v in [row[1] for row in rows[1:]] if v] == [e.perplexity for e in first]
        assert [float(v) for v in [row[2] for row in rows[1:]] if v] == [e.val_perplexity for e in first]
        assert rows[3][1] == ""  # the first run had no third epoch

        screen.query_one(SelectionList).deselect_all()
        await pilot.press("enter")
        assert screen.error == "no run is ticked: tick at least one to export"
        screen.query_one(SelectionList).select_all()
        screen.query_one("#runs-csv", Input).value = str(tmp_path)  # a directory
        await pilot.press("enter")
        assert screen.error == f"{tmp_path} is a directory; give a file name inside it"
        await pilot.press("escape")
        assert not isinstance(app.screen, RunsScreen)


async def test_a_loaded_checkpoints_history_is_compared_too(tmp_path: Path, corpus_path: Path, corpus: Corpus) -> None:
    trained = Trainer(TrainConfig(corpus=str(corpus_path), seed=1, cell="gru", hidden=32, epochs=2, pred_len=0), corpus)
    trained.run()
    trained.save(str(tmp_path / "gru.ckpt"))
    app = make_app("--epochs", "2")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "2 epochs")
        await pilot.press("ctrl+o")
        app.screen.query_one("#path", Input).value = str(tmp_path / "gru.ckpt")
        await pilot.click("#just-generate")
        await wait_for(pilot, lambda: state(app) == "checkpoint", "the loaded checkpoint")
        await pilot.press("f10")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        series = screen.book.overlay()
        assert [s.label for s in series] == ["lr=0.01 cell=rnn hidden=64", "lr=0.001 cell=gru hidden=32"]
        assert list(series[1].values) == [e.perplexity for e in trained.state.history]
        await pilot.press("escape")
        # The other views look at the checkpoint's weights now.
        await pilot.press("f9")
        units = app.screen
        assert isinstance(units, HiddenUnitsScreen)
        await wait_for(pilot, lambda: units.activations is not None or units.error is not None, "activations")
        assert units.activations is not None and units.activations.cell == "gru" and units.activations.hidden == 32
        assert units.model_source is not None and units.model_source.label == "gru.ckpt, epoch 2"
