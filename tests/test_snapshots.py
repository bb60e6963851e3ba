"""Snapshot tests of the app's screens: a layout change shows as a diff of the SVGs in tests/__snapshots__/.

Every figure on screen must be the same on every run and on CI's machine, so the state is built, never timed:
- the model is trained here, headless, with a fixed seed and one torch thread, for a fixed number of epochs, and
  saved as a checkpoint whose history carries fixed timings (a real epoch's seconds vary from run to run);
  greedy text and activations from fixed weights are the same on every run;
- the app opens that checkpoint paused (`--resume CKPT --paused`): nothing trains, so the status shows no
  seconds per epoch, no chars/s and no remaining time, and its elapsed clock stops at once at 0:00;
- the checkpoint names no corpus path (the corpus comes from $RNN_TUI_CORPUS, which tests/conftest.py sets), so
  the settings form shows the same blank field on every machine;
- F4 explains greedy text (no sampling), F9 colours the book's own text; both read the fixed weights;
- each screenshot is taken once every asynchronous part has settled (the settings form, the Shapes panel's
  worker, the plot, the F4/F9 workers), with the text cursors' blinking off and no toast on screen.

Update them after an intended layout change with `pytest tests/test_snapshots.py --snapshot-update`, then review
the SVG diff before committing it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from pilot_helpers import wait_for
from textual.pilot import Pilot
from textual.widgets import Input

from engine import checkpoint as checkpoints
from engine.session import open_session
from tui.app import RnnTuiApp
from tui.app.screens import HelpScreen
from tui.app.screens.hidden_units import HiddenUnitsScreen
from tui.app.screens.next_char import NextCharScreen
from tui.app.screens.runs_compared import RunsScreen
from tui.cli import app_options, parse

TRAINED_EPOCHS = 3
EPOCH_SECONDS = 1.25  # stands for every epoch's training time: a measured one differs on every run
EVAL_SECONDS = 0.25
Snap = Callable[..., bool]


@pytest.fixture(scope="module")
def checkpoint_path(tmp_path_factory: pytest.TempPathFactory, corpus_path: Path) -> Path:
    """A small model trained as `rnn-tui train --headless` would, with seed 0, its timings then fixed."""
    threads = torch.get_num_threads()
    settings = {"corpus": str(corpus_path), "seed": 0, "hidden": 64, "lr": 0.01, "epochs": TRAINED_EPOCHS}
    try:  # one thread: the same sums in the same order on every machine
        session = open_session({**settings, "pred_len": 0}, threads=1)
        session.trainer.run()
        path = tmp_path_factory.mktemp("snapshots") / "snapshot.ckpt"
        session.trainer.save(str(path))
    finally:
        torch.set_num_threads(threads)
    saved = checkpoints.load(path)
    assert len(saved.history) == TRAINED_EPOCHS and saved.history[-1].val_perplexity is not None
    history = [dataclasses.replace(e, seconds=EPOCH_SECONDS, eval_seconds=EVAL_SECONDS) for e in saved.history]
    # No corpus path in the checkpoint: the form would show this machine's path ($RNN_TUI_CORPUS finds it).
    fixed = dataclasses.replace(saved, history=history, config=dataclasses.replace(saved.config, corpus=None))
    checkpoints.save(path, fixed)
    return path


def paused_app(checkpoint_path: Path) -> RnnTuiApp:
    argv = ["--resume", checkpoint_path.name, "--paused", "--epochs", "6", "--threads", "1"]
    return RnnTuiApp(app_options(parse(argv)))


def still_cursors(app: RnnTuiApp) -> None:
    """A blinking cursor is drawn or not depending on the moment of the screenshot: keep every one shown."""
    for screen in app.screen_stack:
        for box in screen.query(Input):
            box.cursor_blink = False


async def settle_main(pilot: Pilot[Any]) -> None:
    """The resumed run is shown paused, with its form, chart and Shapes table in place, and nothing else to come."""
    app: Any = pilot.app
    await wait_for(
        pilot,
        lambda: app.run_control.status.state == "paused" and app.run_control.status.epoch == TRAINED_EPOCHS,
        "the resumed run, paused",
        timeout=30,
    )
    await wait_for(pilot, lambda: bool(app.query("#settings Input")), "the settings form", timeout=20)
    await wait_for(
        pilot, lambda: app.main.plot.drawn == ["fresh", "held-out", "train"], "the plot's curves", timeout=20
    )
    await wait_for(
        pilot,
        lambda: not app.run_control.shapes_wanted and bool(app.main.shapes.rows_shown),
        "the Shapes table",
        timeout=20,
    )
    # The n-gram reference lines come from a worker: waited for, so every screenshot has them (plot title, F10).
    await wait_for(pilot, lambda: bool(app.main.plot.baselines), "the n-gram reference lines", timeout=30)
    app.clear_notifications()
    app.main.plot.redraw(force=True)
    still_cursors(app)
    await pilot.pause()


def opening(key: str, settled: Callable[[Any], bool] | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """run_before for a screen opened with key over the settled main screen; settled(screen) says it is done."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app: Any = pilot.app
        await settle_main(pilot)
        await pilot.press(key)
        screen = app.screen
        if settled is not None:
            await wait_for(pilot, lambda: settled(screen), f"the screen {key} opens", timeout=30)
        app.clear_notifications()
        still_cursors(app)
        await pilot.pause()

    return run_before


@pytest.fixture(autouse=True)
def _beside_the_checkpoint(monkeypatch: pytest.MonkeyPatch, checkpoint_path: Path) -> None:
    # The app is given the checkpoint's bare name, which the status and samples show: not this run's temp path.
    monkeypatch.chdir(checkpoint_path.parent)


def test_main_screen_100x30(snap_compare: Snap, checkpoint_path: Path) -> None:
    assert snap_compare(paused_app(checkpoint_path), terminal_size=(100, 30), run_before=settle_main)


def test_main_screen_80x24(snap_compare: Snap, checkpoint_path: Path) -> None:
    assert snap_compare(paused_app(checkpoint_path), terminal_size=(80, 24), run_before=settle_main)


def test_help_f1(snap_compare: Snap, checkpoint_path: Path) -> None:
    run_before = opening("f1", lambda screen: isinstance(screen, HelpScreen))
    assert snap_compare(paused_app(checkpoint_path), terminal_size=(100, 30), run_before=run_before)


def test_next_character_f4(snap_compare: Snap, checkpoint_path: Path) -> None:
    def explained(screen: Any) -> bool:
        return isinstance(screen, NextCharScreen) and (bool(screen.steps) or screen.error is not None)

    assert snap_compare(paused_app(checkpoint_path), terminal_size=(100, 30), run_before=opening("f4", explained))


def test_hidden_units_f9(snap_compare: Snap, checkpoint_path: Path) -> None:
    def coloured(screen: Any) -> bool:
        return isinstance(screen, HiddenUnitsScreen) and (screen.activations is not None or screen.error is not None)

    assert snap_compare(paused_app(checkpoint_path), terminal_size=(100, 30), run_before=opening("f9", coloured))


def test_runs_compared_f10(snap_compare: Snap, checkpoint_path: Path) -> None:
    run_before = opening("f10", lambda screen: isinstance(screen, RunsScreen))
    assert snap_compare(paused_app(checkpoint_path), terminal_size=(100, 30), run_before=run_before)


# The README's and the docs site's picture is the 100×30 main-screen snapshot itself: retaking the snapshots
# (--snapshot-update) copies it there, and otherwise a picture that differs from the snapshot fails here.
DOCS_PICTURES = {"test_main_screen_100x30.raw": "main-100x30.svg"}


@pytest.mark.parametrize("snapshot_name", sorted(DOCS_PICTURES))
def test_the_docs_picture_is_the_snapshot(request: pytest.FixtureRequest, snapshot_name: str) -> None:
    root = Path(__file__).resolve().parents[1]
    snapshot = Path(__file__).parent / "__snapshots__" / "test_snapshots" / snapshot_name
    picture = root / "docs" / "images" / DOCS_PICTURES[snapshot_name]
    if request.config.getoption("update_snapshots"):
        picture.write_bytes(snapshot.read_bytes())
    assert picture.read_bytes() == snapshot.read_bytes(), (
        f"{picture.relative_to(root)} differs from the snapshot {snapshot.name}: retake the snapshots with "
        "`python -m pytest tests/test_snapshots.py --snapshot-update` (it copies the picture), or copy it by hand"
    )
