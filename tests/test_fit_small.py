"""What a learner sees at 80×24 as at 100×30, measured on the laid-out screen (not the text a widget would render):
the Status panel's visible lines hold the figures #22 asks for (held-out, ‖g‖ and the clipped share, the
implementation's chars/s), and F9's selectors all lie inside their box. Real corpus, tiny GRU, Textual's pilot."""

from __future__ import annotations

import pytest
from pilot_helpers import wait_for
from rich.cells import cell_len
from textual.widgets import Select

from tui.app import RnnTuiApp
from tui.app.screens.hidden_units import HiddenUnitsScreen
from tui.cli import app_options, parse

TINY = ["--hidden", "16", "--threads", "1", "--max-chars", "2000", "--val-chars", "300", "--pred-period", "1"]


@pytest.mark.parametrize("size", [(100, 30), (80, 24)])
async def test_the_status_panel_shows_the_gradient_and_speed_and_f9_fits(size: tuple[int, int]) -> None:
    app = RnnTuiApp(app_options(parse([*TINY, "--cell", "gru", "--epochs", "2", "--impl", "torch"])))
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "2 epochs")
        await wait_for(pilot, lambda: app.run_control.status.counting is not None, "the counting baselines")
        await pilot.pause()
        panel = app.main.status
        visible = panel.render_status().plain.splitlines()[: panel.content_size.height]
        shown = "\n".join(visible)
        assert len(visible) == (5 if size == (80, 24) else 9), visible
        assert visible[0].startswith("● finished  epoch 2/2")
        assert "held-out " in shown and "clipped 100%" in shown and "‖g‖ " in shown, visible
        # The verdict against counting, on the test text once the run has ended, and the test figure itself; at
        # 80×24 the figure takes the finished bar's place and the verdict the bottom border.
        assert "fresh " in shown and "test " in shown, visible
        told = shown if size == (100, 30) else str(panel.border_subtitle)
        assert "-gram " in told and " worse (test)" in told, (told, visible)
        if size == (80, 24):
            assert "test " in visible[0] and cell_len(told) <= panel.content_size.width, visible
        assert "gru 16×1 torch" in shown and "chars/s" in shown, visible  # the implementation beside its speed
        assert all(len(line) <= panel.content_size.width for line in visible)

        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, HiddenUnitsScreen), "F9")
        screen = app.screen
        assert isinstance(screen, HiddenUnitsScreen)
        await wait_for(pilot, lambda: screen.activations is not None or screen.error is not None, "activations")
        await pilot.pause()
        box = screen.query_one("#units-box").content_region
        for selector in ("#units-source", "#units-layer", "#units-kind", "#units-unit"):
            region = screen.query_one(selector).region
            assert box.x <= region.x and region.right <= box.right, (selector, region, box)
        kinds = screen.query_one("#units-kind", Select)
        assert [value for _, value in kinds._options] == ["h", "reset", "update"]  # the GRU's gates: all selectable


@pytest.mark.parametrize("size", [(100, 30), (80, 24)])
async def test_a_paused_run_names_f6_where_it_costs_no_figure(size: tuple[int, int]) -> None:
    """F6 (one epoch) is hidden from the footer, so the paused Status panel names it: beside the epoch at 100×30, on
    the panel's bottom border at 80×24, where the line it would take holds the implementation's chars/s."""
    app = RnnTuiApp(app_options(parse([*TINY, "--epochs", "3", "--paused"])))
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "paused", "the paused start")
        await pilot.press("f6")
        await wait_for(
            pilot,
            lambda: app.run_control.status.state == "paused" and app.run_control.status.epoch == 1,
            "one epoch stepped",
        )
        await pilot.pause()
        panel = app.main.status
        visible = panel.render_status().plain.splitlines()[: panel.content_size.height]
        if size == (80, 24):
            assert panel.border_subtitle == "F6: one epoch" and "F6" not in "\n".join(visible)
            assert "chars/s" in visible[-1], visible
            panel._kept_subtitle = "served: files stay in this session"  # what the app put there (a served seat)
            await pilot.press("f5")
            await wait_for(pilot, lambda: app.run_control.status.state != "paused", "the run resumed")
            await pilot.pause()
            assert panel.border_subtitle == "served: files stay in this session"  # given back once running
        else:
            assert not panel.border_subtitle and "F6: one epoch" in visible[0], visible
