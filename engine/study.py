"""A sweep's study beyond Optuna's own: what it measures (its identity) and living with its storage.

Identity. A study records what makes its trials comparable: the corpus (name and sha256), preset, the settings
every trial shares, the search space, epochs and the held-out split. A command whose settings differ is refused
with the first difference named, so one study never ranks lyrics trials against The Time Machine's.

Outages. Every storage call of a sweep goes through a Patience: a storage error (the database restarting, a
network cut) is retried with backoff for a bounded time, said once in a while, and only then given up as a
StorageLost. Lost machines. Each running trial beats a heartbeat; any live sweep process (and `sweep --reap`)
fails trials whose heartbeat is older than the grace period, records why, and queues their settings again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from engine.config import SETTINGS, preset_config
from engine.errors import RnnTuiError

STORAGE_PATIENCE = 120.0  # seconds a sweep waits for an unreachable database (--storage-patience)
GRACE_SECONDS = 60.0  # a trial whose heartbeat is older than this is failed (--grace)
SAY_EVERY = 30.0  # an outage is said again this often while it lasts
# Settings that change what a trial measures: a study keeps them fixed, so its trials stay comparable. Where
# the corpus lies (its content is compared by hash), how often samples print, the device, the precision and the
# seed (each trial has its own) do not (Setting.compared).
NOT_COMPARED = tuple(s.name for s in SETTINGS if not s.compared)
HELD_OUT = ("max_chars", "val_chars", "val_fraction")

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

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="rnn-tui-sweep-heartbeat", daemon=True)

    def _beat(self) -> None:
        while True:
            # The database is away: the next beat tries again; the grace period covers the gap.
            with contextlib.suppress(Exception):
                self.storage.record_heartbeat(self.trial_id)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def requeue(study: Any, number: int, params: Mapping[str, Any], reason: str = "") -> None:
    """Queue a lost trial's settings again: the next trial of any process sharing the study trains them first."""
    if number >= 0 and params:
        attrs: dict[str, Any] = {"requeued_from": number}
        if reason:
            attrs["requeue_reason"] = reason
        study.enqueue_trial(dict(params), user_attrs=attrs)


def fail_and_requeue(study: Any, trial: Any, reason: str) -> bool:
    """Record why a running trial is lost, fail it and queue its settings again; False if it had finished."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, "reason", reason)
        if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            return False
    except (UpdateFinishedTrialError, RuntimeError):  # finished meanwhile, or failed by another process
        return False
    requeue(study, trial.number, trial.params, reason)
    return True


def reap(study: Any, grace: float) -> list[tuple[int, str]]:
    """Fail (with the reason) and re-queue the running trials whose heartbeat is older than grace seconds."""
    storage = study._storage
    lost = []
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        trial = storage.get_trial(trial_id)
        host = trial.user_attrs.get("host", "?")
        pid = trial.user_attrs.get("pid", "?")
        reason = f"lost: no heartbeat from {host} (pid {pid}) for over {grace:g} s; queued again"
        if fail_and_requeue(study, trial, reason):
            lost.append((trial.number, reason))
    return lost


# ----- identity -----


def corpus_file(fixed: Mapping[str, Any]) -> Path | None:
    """The corpus file trials read (as engine.session finds it), without reading it; None when it would download."""
    from engine.corpus import run_corpus_path

    return run_corpus_path(str(fixed.get("preset", "d2l-zh")), fixed.get("corpus"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def study_identity(fixed: Mapping[str, Any], space: Any) -> dict[str, Any]:
    """What a study's trials share: corpus, preset, epochs, held-out split, search space and every other setting."""
    config = preset_config(dict(fixed)).to_dict()
    settings = {**config, **dict(space.fixed)}
    path = corpus_file(fixed)
    shared = {
        k: v for k, v in sorted(settings.items()) if k not in NOT_COMPARED and k not in space.names and k != "preset"
    }
    for name in ("epochs", *HELD_OUT):
        shared.pop(name, None)
    identity = {
        "corpus": path.name if path is not None else "(downloaded)",
        "corpus_sha256": sha256_of(path) if path is not None and path.is_file() else None,
        "preset": config["preset"],
        "epochs": config["epochs"],
        "held_out": {name: config[name] for name in HELD_OUT},
        "space": space.describe(),
        "settings": shared,
    }
    return json.loads(json.dumps(identity))


def identity_difference(study: str, existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> str | None:
    """One line naming the first difference between a study's identity and a command's, or None."""

    def refuse(what: str, suffix: str) -> str:
        return (
            f"study {study!r} {what}: its trials would not compare; give another study name, "
            f"e.g. --study {study}-{suffix}"
        )

    if (existing.get("corpus"), existing.get("corpus_sha256")) != (wanted.get("corpus"), wanted.get("corpus_sha256")):

        def shown(identity: Mapping[str, Any]) -> str:
            sha = identity.get("corpus_sha256")
            return f"{identity.get('corpus')} (sha256 {sha[:12]}…)" if sha else str(identity.get("corpus"))

        stem = str(wanted.get("corpus", "corpus")).split(".")[0] or "corpus"
        return refuse(f"trains on {shown(existing)}, this command on {shown(wanted)}", stem)
    if existing.get("preset") != wanted.get("preset"):
        return refuse(f"uses preset {existing.get('preset')}, this command {wanted.get('preset')}", wanted["preset"])
    if existing.get("epochs") != wanted.get("epochs"):
        return refuse(
            f"trains {existing.get('epochs')} epochs a trial, this command {wanted.get('epochs')}",
            f"{wanted.get('epochs')}ep",
        )
    if existing.get("held_out") != wanted.get("held_out"):
        old, new = existing.get("held_out") or {}, wanted.get("held_out") or {}
        name = next(k for k in sorted({*old, *new}) if old.get(k) != new.get(k))
        return refuse(
            f"holds out with {name.replace('_', '-')} {old.get(name)}, this command {new.get(name)}",
            f"{name.replace('_', '')}{new.get(name)}",
        )
    if existing.get("space") != wanted.get("space"):
        return refuse(f"searches {existing.get('space')}, this command {wanted.get('space')}", "space2")
    old, new = existing.get("settings") or {}, wanted.get("settings") or {}
    differ = [k for k in sorted({*old, *new}) if old.get(k) != new.get(k)]
    if differ:
        changes = ", ".join(f"{k.replace('_', '-')} {old.get(k, '-')}→{new.get(k, '-')}" for k in differ)
        first = differ[0]
        return refuse(f"was run with other fixed settings ({changes})", f"{first.replace('_', '')}{new.get(first, '')}")
    return None
