"""What the run on screen is doing: one type for the Status panel, the keys and Runs compared."""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    LOADING = "loading"
    RUNNING = "running"
    PAUSING = "pausing"  # asked to pause; the trainer pauses at the next batch boundary
    PAUSED = "paused"
    STEPPING = "stepping"
    STOPPING = "stopping"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    CHECKPOINT = "checkpoint"  # no training: a loaded checkpoint's weights, for generating

    @property
    def ended(self) -> bool:
        """No trainer will train this run any more (F7 starts a new one)."""
        return self in (RunState.FINISHED, RunState.STOPPED, RunState.FAILED, RunState.CHECKPOINT)

    @property
    def style(self) -> str:
        return STYLES[self]


STYLES = {
    RunState.LOADING: "yellow",
    RunState.RUNNING: "green",
    RunState.PAUSING: "yellow",
    RunState.PAUSED: "yellow",
    RunState.STEPPING: "green",
    RunState.STOPPING: "yellow",
    RunState.FINISHED: "cyan",
    RunState.STOPPED: "cyan",
    RunState.FAILED: "bold red",
    RunState.CHECKPOINT: "magenta",
}
