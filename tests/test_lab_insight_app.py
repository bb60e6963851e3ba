"""The lab's gradient views in the app, on the real corpus: the F11 gradients-through-time pane (the current weights
beside a kept run), saliency in F4, gate units in F9. Each checks that what is shown is what the engine computes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pilot_helpers import wait_for
from textual.widgets import Input, Select

from engine.config import TrainConfig
from engine.data.corpus import Corpus
from engine.lab.gates import gate_values
from engine.lab.gradients import gradients_through_time
from engine.lab.saliency import saliency
from engine.trainer import Trainer
from tui.app import RnnTuiApp
from tui.app.screens.dialogs import lab_help
from tui.app.screens.hidden_units import GATE_CENTRE, HiddenUnitsScreen, activation_style
from tui.app.screens.lab import LabScreen
from tui.app.screens.lab_gradients import GradientsChart, GradientsPane
from tui.app.screens.next_char import NextCharScreen, saliency_style
from tui.cli import app_options, parse

SIZE = (100, 30)
FAST = ["--hidden", "32", "--threads", "1", "--seed", "0", "--pred-len", "0", "--epochs", "2"]


def make_app(*flags: str) -> RnnTuiApp:
    return RnnTuiApp(app_options(parse([*FAST, *flags])))


def finished(app: RnnTuiApp, cell: str) -> bool:
    config = app.run_control.config
    return app.run_control.status.state == "finished" and config is not None and config.cell == cell


async def test_gradients_pane_draws_the_current_weights_beside_a_kept_run(
    tmp_path: Path, corpus_path: Path, corpus: Corpus
) -> None:
    gru = Trainer(TrainConfig(corpus=str(corpus_path), seed=1, cell="gru", hidden=16, epochs=1, pred_len=0), corpus)
    gru.run()
    gru.save(str(tmp_path / "gru.ckpt"))
    app = make_app("--cell", "rnn")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: finished(app, "rnn"), "the RNN run")
        runs = app.run_control
        rnn_trainer = runs.trainer
        assert rnn_trainer is not None and runs.config is not None
        rnn_curve = gradients_through_time(rnn_trainer.copy_model(), rnn_trainer.vocab, rnn_trainer.corpus.held_out)
        app.main.settings.load(runs.config.with_changes(cell="lstm"))
        await pilot.press("f7")
        await pilot.press("enter")  # confirm: a new cell starts from scratch
        await wait_for(pilot, lambda: finished(app, "lstm"), "the LSTM run")
        await wait_for(pilot, lambda: runs.lab_curves.get("run 1") is not None, "the kept RNN's curve")
        kept = runs.lab_curves["run 1"]
        assert kept is not None and kept.norm == pytest.approx(rnn_curve.norm, rel=1e-6)

        await pilot.press("f11")
        assert isinstance(app.screen, LabScreen)
        pane = app.screen.query_one(GradientsPane)
        await wait_for(pilot, lambda: pane.computed > 0, "the pane's curve")
        assert pane.error is None and pane.current is not None
        trainer = runs.trainer
        assert trainer is not None
        expected = gradients_through_time(trainer.copy_model(), trainer.vocab, trainer.corpus.held_out)
        assert pane.current.cell == "lstm" and pane.current.norm == pytest.approx(expected.norm, rel=1e-6)
        await pilot.pause(0.1)
        chart = pane.query_one(GradientsChart)
        assert [label.split(" ")[0] for label in chart.drawn] == ["now", "cell=rnn"]  # the LSTM's own: drawn once
        assert "Gradients through time" in lab_help().plain
        await pilot.press("escape")
        assert not isinstance(app.screen, LabScreen)

        # A GRU's checkpoint loaded to generate: its curve is computed too (over the run's held-out text), and as
        # the weights on screen it is "now", drawn once; the LSTM run, replaced by it, is kept beside the RNN.
        await pilot.press("ctrl+o")
        app.screen.query_one("#path", Input).value = str(tmp_path / "gru.ckpt")
        await pilot.click("#just-generate")
        await wait_for(pilot, lambda: runs.lab_curves.get("checkpoint gru.ckpt") is not None, "the checkpoint's curve")
        loaded = runs.lab_curves["checkpoint gru.ckpt"]
        expected_gru = gradients_through_time(gru.copy_model(), gru.vocab, trainer.corpus.held_out)
        assert loaded is not None and loaded.norm == pytest.approx(expected_gru.norm, rel=1e-6)
        await pilot.press("f11")
        pane = app.screen.query_one(GradientsPane)
        await wait_for(pilot, lambda: pane.computed > 0, "the pane's curve")
        assert pane.current is not None and pane.current.cell == "gru"
        await pilot.pause(0.1)
        drawn = [label.split(" ")[0] for label in pane.query_one(GradientsChart).drawn]
        assert drawn == ["now", "cell=rnn", "cell=lstm"]


async def test_f4_shades_earlier_characters_by_saliency_and_f9_colours_a_gate_unit() -> None:
    app = make_app("--cell", "lstm")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: finished(app, "lstm"), "the LSTM run")
        trainer = app.run_control.trainer
        assert trainer is not None
        model, vocab = trainer.copy_model(), trainer.vocab
        app.query_one("#prefix", Input).value = "分开"
        app.query_one("#gen-length", Input).value = "20"
        box = app.main.generate_box
        await pilot.press("f2", "enter")
        await wait_for(pilot, lambda: box.last_text is not None or box.last_error is not None, "generation")

        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, NextCharScreen)
        await wait_for(pilot, lambda: screen.saliency is not None or screen.error is not None, "saliency")
        step = screen.steps[0]
        expected = saliency(model, vocab, screen.full_text, step.position)
        assert screen.saliency is not None
        assert screen.saliency.saliency == pytest.approx(expected.saliency, rel=1e-5, abs=1e-9)
        assert f"effective context: {expected.effective_context} characters back hold 90 %" in screen.detail_shown.plain
        top = max(expected.saliency)
        shaded = {span.start: span.style for span in screen.text_shown.spans if span.start < step.position}
        for position, value in enumerate(expected.saliency):
            shade = saliency_style(value / top)
            if shade is not None:
                assert shaded[position] == shade
        await pilot.press("down")
        await wait_for(
            pilot, lambda: screen.saliency is not None and len(screen.saliency.text) == step.position + 1, "next one"
        )
        await pilot.press("escape")

        await pilot.press("f9")
        units = app.screen
        assert isinstance(units, HiddenUnitsScreen)
        await wait_for(pilot, lambda: units.activations is not None or units.error is not None, "activations")
        kinds = units.query_one("#units-kind", Select)
        assert [value for _, value in kinds._options] == ["h", "c", "input", "forget", "output"]
        kinds.value = "forget"
        await pilot.pause(0.1)
        assert units.kind == "forget" and units.activations is not None
        text = units.activations.text
        forget = gate_values(model, vocab, [text])["forget"][0][:, 0, units.unit]
        values = units.activations.unit(units.unit, "forget")
        assert values == pytest.approx(forget.float().tolist(), abs=1e-6)
        for span in units.coloured.spans[:50]:
            assert span.style == activation_style(values[span.start] - GATE_CENTRE, GATE_CENTRE)
        info = str(units.query_one("#units-info").render())
        assert "forget gate, this unit: closed (< 0.1) " in info and "of the training text's first 600" in info, info
        assert torch.is_tensor(units.activations.values["forget"])


async def test_gradients_pane_follows_training_while_open() -> None:
    app = RnnTuiApp(app_options(parse(["--hidden", "16", "--threads", "1", "--seed", "0", "--pred-len", "0"])))
    async with app.run_test(size=SIZE) as pilot:
        runs = app.run_control
        await wait_for(pilot, lambda: runs.status.epoch >= 1, "a first epoch")
        await pilot.press("f11")
        pane = app.screen.query_one(GradientsPane)
        await wait_for(pilot, lambda: pane.computed >= 1, "the first curve")
        first = pane.epoch_read
        await wait_for(pilot, lambda: pane.computed >= 2 and pane.epoch_read > first, "a later epoch's curve")
        assert pane.error is None and pane.current is not None
        await pilot.press("escape")
        # Closed: the pane and its timer are gone, so nothing more is computed while training goes on.
        await wait_for(pilot, lambda: not pane.is_attached, "the pane removed")
