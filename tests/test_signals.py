"""engine.signals.StopOnSignals, the one signal helper of the headless runs and the sweep: the first signal stops,
a later one raises Interrupted, or with `again` (the sweep's monitor and workers) is handed over instead."""

from __future__ import annotations

import os
import signal

import pytest

from engine.signals import Interrupted, StopOnSignals


def test_a_second_signal_raises_interrupted_and_the_handlers_come_back() -> None:
    stops: list[str] = []
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as raised, StopOnSignals(lambda: stops.append("stop")) as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.requested and signals.exit_code == 143 and stops == ["stop"]
        os.kill(os.getpid(), signal.SIGTERM)
    assert raised.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is before


def test_with_again_every_later_signal_is_handed_over_and_nothing_raises() -> None:
    stops: list[str] = []
    later: list[int] = []
    with StopOnSignals(lambda: stops.append("stop"), again=later.append) as signals:
        assert not signals.requested
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        signals.request(signal.SIGTERM)  # a watchdog thread's stop (a sweep worker whose monitor is gone)
    assert stops == ["stop"] and later == [signal.SIGINT, signal.SIGTERM]
    assert signals.received == signal.SIGINT and signals.exit_code == 130
