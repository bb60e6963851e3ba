"""A sweep living with faults: database outages waited out, heartbeats, and lost trials failed and run again.

Outages. Every storage call of a sweep goes through a Patience: a storage error (the database restarting, a
network cut) is retried with backoff for a bounded time, said once in a while, and only then given up as a
StorageLost. Lost machines. Each running trial beats a heartbeat (Heartbeat) and stores its machine's grace
period; any live sweep process (and `sweep --reap`) fails a trial whose heartbeat stays older than that trial's own
grace (Reaper), records why, and queues its settings again. A worker process of this machine that dies has its
trials failed at once (fail_trials_of).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from engine.errors import RnnTuiError
from engine.sweep.optuna_internals import (
    heartbeat_ages,
    rdb_storage,
    record_heartbeat,
    study_id,
    study_storage,
    trial_id,
)
from engine.sweep.spec import GRACE_SECONDS, HOST

if TYPE_CHECKING:  # optuna is imported where it is used
    import optuna
    from optuna.storages import RDBStorage
    from optuna.trial import FrozenTrial

MIN_GRACE = 2.0  # the shortest --grace taken: no trial is judged silent sooner
SAY_EVERY = 30.0  # an outage is said again this often while it lasts

T = TypeVar("T")


class StorageLost(RnnTuiError):
    """The storage stayed unreachable for longer than the sweep's patience."""


# ----- outages -----


def is_outage(exc: BaseException | None) -> bool:
    """A storage error worth waiting out: the connection failed or was lost (not bad SQL, not a read-only file).

    Optuna wraps SQLAlchemy's errors in StorageInternalError, and SQLAlchemy wraps the driver's: the chain is
    walked (a StorageInternalError "during the commit" is often a lost connection underneath). A read-only SQLite
    file is an OperationalError too, but waiting does not make it writable.
    """
    import sqlalchemy.exc

    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        exc = pending.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        if "readonly" in str(exc) or "read-only" in str(exc):
            return False
        if isinstance(
            exc,
            sqlalchemy.exc.OperationalError
            | sqlalchemy.exc.InterfaceError
            | sqlalchemy.exc.DisconnectionError
            | sqlalchemy.exc.TimeoutError
            | ConnectionError,
        ):
            return True
        if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
            return True
        if type(exc).__module__.startswith("psycopg") and type(exc).__name__ in ("OperationalError", "InterfaceError"):
            return True
        # SQLAlchemy's StatementError keeps the driver's error as orig; Optuna raises from, or during, another.
        pending += [getattr(exc, "orig", None), exc.__cause__, exc.__context__]
    return False


def chain(exc: BaseException) -> list[BaseException]:
    """The exception and every one it wraps (orig, cause, context)."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        item = pending.pop()
        if item is None or any(item is seen for seen in found):
            continue
        found.append(item)
        pending += [getattr(item, "orig", None), item.__cause__, item.__context__]
    return found


def is_read_only(exc: BaseException) -> bool:
    """SQLite's "attempt to write a readonly database", however wrapped."""
    return any("readonly" in str(item) or "read-only" in str(item) for item in chain(exc))


def storage_reason(exc: BaseException) -> str:
    """The driver's first line (what the database said), not SQLAlchemy's wrapping."""
    inner: BaseException = exc
    while True:
        nxt = getattr(inner, "orig", None) or inner.__cause__
        if nxt is None or nxt is inner:
            break
        inner = nxt
    lines = str(inner).strip().splitlines()
    return lines[0] if lines else type(inner).__name__


def in_words(seconds: float) -> str:
    """'2 more minutes', '40 more seconds'."""
    if seconds >= 90:
        return f"{round(seconds / 60)} more minutes"
    whole = max(1, math.ceil(seconds))
    return f"{whole} more second{'s' * (whole != 1)}"


class Patience:
    """Runs storage calls, waiting out an outage of up to `seconds`; notify(kind, line) says what happens.

    kind is "outage" (the first failure, then every SAY_EVERY seconds) or "back". Used from one thread.
    """

    def __init__(self, seconds: float, notify: Callable[[str, str], None]) -> None:
        self.seconds = seconds
        self.notify = notify
        self.down_since: float | None = None
        # When an outage this process saw ended: until a grace period later, other processes' heartbeats may be
        # stale only because they could not reach the database either, so this process fails none of them.
        self.back_at = -math.inf
        self._said = -math.inf

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        delay = 0.5
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                now = time.monotonic()
                if self.down_since is None:
                    self.down_since = now
                left = self.seconds - (now - self.down_since)
                if left <= 0:
                    raise StorageLost(
                        f"database unreachable for {self.seconds:g} s ({storage_reason(exc)}): giving up "
                        "(--storage-patience)"
                    ) from None
                if now - self._said >= SAY_EVERY:
                    self._said = now
                    line = f"database unreachable ({storage_reason(exc)}), retrying for {in_words(left)}"
                    self.notify("outage", line)
                time.sleep(min(delay, left))
                delay = min(delay * 2, 5.0)
                continue
            if self.down_since is not None:
                now = time.monotonic()
                self.notify("back", f"database reachable again after {now - self.down_since:.0f} s")
                self.down_since, self.back_at, self._said = None, now, -math.inf
            return result

    def may_reap(self, grace: float) -> bool:
        return time.monotonic() - self.back_at >= grace


class Heartbeat:
    """Records a running trial's heartbeat every interval in a thread; a failed beat (an outage) is skipped.

    Optuna's own heartbeat thread dies with a traceback on the first storage error; this one keeps beating.
    """

    def __init__(self, storage: RDBStorage, trial_id: int, interval: float) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="rnn-tui-sweep-heartbeat", daemon=True)

    def _beat(self) -> None:
        while True:
            # The database is away: the next beat tries again; the grace period covers the gap.
            with contextlib.suppress(Exception):
                record_heartbeat(self.storage, self.trial_id)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def requeue(study: optuna.Study, number: int, params: Mapping[str, Any], reason: str = "") -> None:
    """Queue a lost trial's settings again: the next trial of any process sharing the study trains them first."""
    if number >= 0 and params:
        attrs: dict[str, Any] = {"requeued_from": number}
        if reason:
            attrs["requeue_reason"] = reason
        study.enqueue_trial(dict(params), user_attrs=attrs)


def fail_and_requeue(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Record why a running trial is lost, fail it and queue its settings again; False if it had finished."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = study_storage(study)
    try:
        storage.set_trial_user_attr(trial_id(trial), "reason", reason)
        if not storage.set_trial_state_values(trial_id(trial), state=TrialState.FAIL):
            return False
    except (UpdateFinishedTrialError, RuntimeError):  # finished meanwhile, or failed by another process
        return False
    requeue(study, trial.number, trial.params, reason)
    return True


def trial_grace(trial: FrozenTrial, default: float = GRACE_SECONDS) -> float:
    """The grace period of the machine that runs a trial (stored with it when it starts); a trial from before graces
    were stored gets the longer of the reader's and the default one."""
    stored = trial.user_attrs.get("grace")
    return float(stored) if isinstance(stored, int | float) else max(default, GRACE_SECONDS)


def confirm_seconds(grace: float) -> float:
    """How long a trial must stay silent past its grace, as this process watches, before it is failed: a machine
    that lost the database for longer than its grace beats again within this once the database is back (its beats
    come every sixth of the grace; a connection attempt may take a few seconds more)."""
    return max(1.0, grace / 2)


class Reaper:
    """Fails (with the reason) and re-queues the running trials whose machine went silent.

    Each trial is judged by its own grace period, stored with it by the machine that runs it: one machine's short
    --grace never fails another's live trials. A trial is failed only when its heartbeat has been older than its
    grace for confirm_seconds as this process watched (a machine back from an outage beats again meanwhile), and,
    when this process itself just saw the database come back (patience), not before one grace period after that.
    """

    def __init__(self, study: optuna.Study, grace: float = GRACE_SECONDS, patience: Patience | None = None) -> None:
        self.study, self.grace, self.patience = study, grace, patience
        self.suspects: dict[int, float] = {}  # trial id → when this process first saw it silent past its grace

    def reap(self) -> list[tuple[int, str]]:
        """The trials failed now: (number, reason)."""
        storage = rdb_storage(self.study)
        now = time.monotonic()
        suspects: dict[int, float] = {}
        lost = []
        for trial, age in heartbeat_ages(storage, study_id(self.study)).items():
            if age <= MIN_GRACE:
                continue
            frozen = storage.get_trial(trial)
            grace = trial_grace(frozen, self.grace)
            if age <= grace or (self.patience is not None and not self.patience.may_reap(grace)):
                continue
            suspects[trial] = self.suspects.get(trial, now)
            if now - suspects[trial] < confirm_seconds(grace):
                continue
            host = frozen.user_attrs.get("host", "?")
            pid = frozen.user_attrs.get("pid", "?")
            reason = f"lost: no heartbeat from {host} (pid {pid}) for over {grace:g} s; queued again"
            del suspects[trial]
            if fail_and_requeue(self.study, frozen, reason):
                lost.append((frozen.number, reason))
        self.suspects = suspects
        return lost

    def waiting(self) -> float:
        """Seconds until the last trial suspected now may be failed (0: none suspected)."""
        now = time.monotonic()
        if not self.suspects:
            return 0.0
        return max(0.0, max(first + confirm_seconds(self.grace_of(t)) - now for t, first in self.suspects.items()))

    def grace_of(self, trial: int) -> float:
        return trial_grace(rdb_storage(self.study).get_trial(trial), self.grace)


def heartbeat_interval(grace: float) -> float:
    """Beats often enough that a live trial is never older than the grace period (six beats fit in it)."""
    return max(0.5, grace / 6)


def fail_trials_of(study: optuna.Study, pid: int, reason: str, numbers: Collection[int] = ()) -> list[int]:
    """Fail (and re-queue) the running trials of a dead worker process of this machine: those it recorded as its
    own, and numbers (those it said it asked for: it may have died before recording its pid)."""
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        mine = trial.user_attrs.get("pid") == pid and trial.user_attrs.get("host") == HOST
        if (mine or trial.number in numbers) and fail_and_requeue(study, trial, reason):
            failed.append(trial.number)
    return failed
