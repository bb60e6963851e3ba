"""The learning-rate schedule in the app: Status shows the rate the schedule gives now, and --lr with the schedule."""

from __future__ import annotations

from pilot_helpers import wait_for
from test_app import SIZE, make_app


async def test_status_shows_the_scheduled_rate() -> None:
    app = make_app("--schedule", "cosine", "--epochs", "4", "--hidden", "32", "--lr", "0.01")
    async with app.run_test(size=SIZE) as pilot:
        # Read once the run has ended (4 small epochs end within a second on a fast machine): Status then shows the
        # last epoch's rate, which no later event changes.
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) == 4, "the four epochs")
        await pilot.pause()
        epoch = app.run_control.epochs_seen[-1]
        first = app.run_control.epochs_seen[0].scheduled_lr
        assert first is not None and 0 < first < 0.01  # cosine: below --lr after a batch
        assert epoch.scheduled_lr is not None and 0 < epoch.scheduled_lr < first  # and falling
        shown = app.main.status.render_status().plain
        assert f"lr now {epoch.scheduled_lr:.3g}" in shown and "adam lr 0.01 cosine" in shown
