"""One served seat cannot fill the class's observations CSV (issue 32, item 8): at most RowQuota.PER_MINUTE rows a
minute and RowQuota.TOTAL in all; a terminal user's rows are never capped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.observations import Observation
from tui import lesson_report
from tui.lesson_report import RowQuota, observe_and_collect
from tui.served import SESSION_DIR_ENV


class StubLesson:
    name = "temperature"

    def observe(self, run: object) -> Observation:
        return Observation(self.name, "an observation")


def test_a_seat_adds_a_few_rows_a_minute_and_a_bounded_total() -> None:
    now = [0.0]
    quota = RowQuota(clock=lambda: now[0])
    assert [quota.refuse() for _ in range(RowQuota.PER_MINUTE)] == [None] * RowQuota.PER_MINUTE
    assert "at most 2 observation rows a minute" in str(quota.refuse())
    for _ in range(RowQuota.TOTAL):
        now[0] += 31
        quota.refuse()
    assert "its 20 rows" in str(quota.refuse()) and len(quota.written) == RowQuota.TOTAL


@pytest.mark.parametrize("served", [True, False])
def test_only_a_served_seat_is_capped(served: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Any] = []
    monkeypatch.setattr(lesson_report, "lesson_run", lambda trainer, failure="": None)
    monkeypatch.setattr(lesson_report, "with_verdict", lambda observation, trainer: observation)
    monkeypatch.setattr(lesson_report, "append_observation", lambda *args: written.append(args))
    monkeypatch.setattr(lesson_report, "SEAT_ROWS", RowQuota())
    if served:
        monkeypatch.setenv(SESSION_DIR_ENV, str(tmp_path / "session-1-abc"))
    else:
        monkeypatch.delenv(SESSION_DIR_ENV, raising=False)
    csv = str(tmp_path / "observations-temperature.csv")
    # A stub lesson and no trainer (lesson_run and with_verdict are replaced above): only the row quota is tested.
    problems = [observe_and_collect(StubLesson(), None, "", csv)[2] for _ in range(15)]  # type: ignore[arg-type]
    if served:
        assert len(written) == RowQuota.PER_MINUTE and all("a minute" in str(p) for p in problems[2:])
    else:
        assert len(written) == 15 and problems == [None] * 15
