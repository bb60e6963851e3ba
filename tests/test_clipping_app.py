"""The app's view of gradient norms and clipping (issue 22, item 1) and of --impl (item 5), driven by Textual's pilot on
a short real run: the Status panel's norm and clipped share, the Perplexity panel's gradients mode (ctrl+g)."""

from __future__ import annotations

from pilot_helpers import shown_text, wait_for
from test_heldout_app import data_columns_with

from tui.app import RnnTuiApp
from tui.app.run_state import RunState
from tui.app.widgets.plot import THETA_MARK
from tui.cli import app_options, parse

SHORT = ["--hidden", "32", "--max-chars", "4000", "--val-chars", "300", "--epochs", "3", "--threads", "1"]


async def test_ctrl_g_shows_every_steps_gradient_norm_against_theta_and_back() -> None:
    app = RnnTuiApp(app_options(parse([*SHORT, "--impl", "torch"])))
    async with app.run_test(size=(100, 30)) as pilot:
        control, plot = app.run_control, app.main.plot
        await wait_for(pilot, lambda: control.status.state is RunState.FINISHED, "the run to finish", timeout=120)
        status = app.main.status.render_status().plain
        assert "rnn 32×1 torch" in status  # the implementation beside the model, for comparing chars/s
        assert "clipped 100%" in status and "‖g‖ " in status
        assert "^g ‖g‖" in str(plot.border_title)  # the key is named where it applies

        await pilot.press("ctrl+g")
        trainer = control.trainer
        assert trainer is not None
        steps = trainer.grad_norms.since(0)
        await wait_for(pilot, lambda: len(plot.gradients) == len(steps) == 3 * trainer.batches_per_epoch, "steps")
        assert [g[:2] for g in plot.gradients] == [(g.step, g.before) for g in steps]
        await wait_for(pilot, lambda: plot.chart is not None and bool(plot.shown_gradients), "the gradients drawn")
        await pilot.pause()
        assert str(plot.border_title).startswith(f"Gradient norm · step {steps[-1].step}")
        assert "θ 0.01" in str(plot.border_subtitle) and "clipped 100%" in str(plot.border_subtitle)
        assert plot.chart is not None
        chart = shown_text(plot.chart)
        assert data_columns_with(THETA_MARK, chart), chart  # θ drawn as a line
        assert "0.01" in chart  # on the log axis: the norms are far above θ

        await pilot.press("ctrl+g")
        await pilot.pause()
        assert plot.mode == "perplexity" and str(plot.border_title).startswith("Perplexity")
