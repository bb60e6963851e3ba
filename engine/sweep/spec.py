"""What a sweep is asked to do (SweepSpec), how it ends (EXIT_*), and the names its other modules share.

No Optuna, no torch: the command line builds a SweepSpec from here.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.config import TrainConfig
from engine.errors import RnnTuiError
from engine.sweep.space import Space

DEFAULT_STORAGE_FILE = "rnn-tui-sweeps.db"
DEFAULT_STUDY = "rnn-tui"
# The storage URL when --storage is not given: how the app hands a sweep its storage (a password in argv would show
# in `ps`); a lab may set it too. PostgreSQL's own PGPASSWORD and ~/.pgpass keep the password out of the URL.
STORAGE_ENV = "RNN_TUI_SWEEP_STORAGE"
DEFAULT_EPOCHS = 20
DEFAULT_TRIALS = 20  # when neither --trials nor --timeout is given
PRUNERS = ("median", "halving", "none")
STORAGE_PATIENCE = 120.0  # seconds a sweep waits for an unreachable database (--storage-patience)
GRACE_SECONDS = 60.0  # a trial whose heartbeat is older than this is failed (--grace)
HOST = socket.gethostname()
MAX_STUDY_NAME = 512  # Optuna's studies.study_name column (PostgreSQL refuses longer; SQLite would take it)
# How `rnn-tui sweep` ends (its --help lists them).
EXIT_OK = 0  # this command's budget ran (workers that died on the way were replaced)
EXIT_LOST = 1  # worker processes kept dying (replaced 3 × --jobs times, budget left), or an unexpected error
EXIT_USAGE = 2  # bad input, a study that does not match, storage that cannot be opened
EXIT_STORAGE = 3  # the database stayed unreachable for longer than --storage-patience
# 128 + N: stopped by signal N (130 ctrl+c, 143 SIGTERM, 129 SIGHUP)
Notify = Callable[[str, str], None]  # (kind, line): a worker's line for the monitor to print
OBJECTIVE_HELDOUT = "held-out perplexity"
OBJECTIVE_FALLBACK = "TRAINING perplexity (fallback: the engine gave no held-out figure)"
STATES = ("running", "complete", "pruned", "failed", "waiting")


class SweepError(RnnTuiError):
    """A sweep cannot start: bad storage, bad budget, a study that does not fit."""


@dataclass(frozen=True)
class SweepSpec:
    """Everything a worker process needs (picklable: it crosses to spawned processes)."""

    fixed: dict[str, Any]  # TrainConfig settings fixed for every trial (the flags given), epochs included
    space: Space
    study: str
    storage: str  # a SQLAlchemy URL
    trials: int | None
    timeout: float | None
    jobs: int
    threads: int
    pruner: str = "median"
    sampler_seed: int | None = None
    corpus_url: str | None = None
    save: str | None = None  # a checkpoint per trial: name.trial-N.ckpt
    metrics: str | None = None  # one JSON line per epoch of every trial
    storage_patience: float = STORAGE_PATIENCE  # seconds an unreachable database is waited for
    grace: float = GRACE_SECONDS  # a running trial without a heartbeat for this long is failed and queued again
    identity: dict[str, Any] | None = None  # what the study's trials share (set by run_sweep)


def check_spec(spec: SweepSpec) -> None:
    if spec.jobs < 1:
        raise SweepError(f"--jobs must be a whole number ≥ 1, got {spec.jobs}")
    if spec.trials is not None and spec.trials < 1:
        raise SweepError(f"--trials must be a whole number ≥ 1, got {spec.trials}")
    if spec.timeout is not None and not (math.isfinite(spec.timeout) and spec.timeout > 0):
        raise SweepError(f"--timeout must be a number of seconds > 0, got {spec.timeout:g}")
    if not (math.isfinite(spec.storage_patience) and spec.storage_patience >= 0):
        raise SweepError(f"--storage-patience must be a number of seconds ≥ 0, got {spec.storage_patience:g}")
    if not (math.isfinite(spec.grace) and spec.grace >= 2):
        raise SweepError(f"--grace must be a number of seconds ≥ 2, got {spec.grace:g}")
    if not spec.study.strip():
        raise SweepError("--study needs a name")
    if len(spec.study) > MAX_STUDY_NAME:
        raise SweepError(
            f"--study is {len(spec.study):,} characters long; a study name holds at most {MAX_STUDY_NAME} (Optuna's "
            "study table)"
        )
    TrainConfig(**{k: v for k, v in spec.fixed.items()})  # a bad fixed setting fails here, not in every trial
