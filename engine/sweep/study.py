"""A sweep's study beyond Optuna's own: opening its storage, what it measures (its identity), living with outages.

Storage. resolve_storage turns --storage into a SQLAlchemy URL (a SQLite file by default); open_storage and
open_study fail in one line on a malformed, unreachable or read-only database (not retried: a wrong URL should
fail at once).

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
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from engine.config import SETTINGS, preset_config
from engine.errors import RnnTuiError, first_line
from engine.extras import POSTGRES
from engine.sweep.space import Space
from engine.sweep.spec import DEFAULT_STORAGE_FILE, GRACE_SECONDS, HOST, OBJECTIVE_HELDOUT, SweepError, SweepSpec

if TYPE_CHECKING:  # optuna is imported where it is used: the app loads it only when a sweep is read
    import optuna
    from optuna.storages._heartbeat import BaseHeartbeat
    from optuna.trial import FrozenTrial

SAY_EVERY = 30.0  # an outage is said again this often while it lasts
# Settings that change what a trial measures: a study keeps them fixed, so its trials stay comparable. Where
# the corpus lies (its content is compared by hash), how often samples print, the device, the precision and the
# seed (each trial has its own) do not (Setting.compared).
NOT_COMPARED = tuple(s.name for s in SETTINGS if not s.compared)
HELD_OUT = ("max_chars", "val_chars", "val_fraction", "test_fraction")

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

    def __init__(self, storage: BaseHeartbeat, trial_id: int, interval: float) -> None:
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

    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, "reason", reason)
        if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            return False
    except (UpdateFinishedTrialError, RuntimeError):  # finished meanwhile, or failed by another process
        return False
    requeue(study, trial.number, trial.params, reason)
    return True


def heartbeat_storage(study: optuna.Study) -> BaseHeartbeat:
    """The study's storage as the heartbeat store it is: open_storage makes an RDBStorage, which Optuna wraps in
    its cached storage, both of them heartbeat stores."""
    from optuna.storages._heartbeat import BaseHeartbeat

    storage = study._storage
    if not isinstance(storage, BaseHeartbeat):
        raise SweepError(f"study {study.study_name!r}: its storage records no heartbeats")
    return storage


def reap(study: optuna.Study, grace: float) -> list[tuple[int, str]]:
    """Fail (with the reason) and re-queue the running trials whose heartbeat is older than grace seconds."""
    storage = study._storage
    lost = []
    for trial_id in heartbeat_storage(study)._get_stale_trial_ids(study._study_id):
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


def study_identity(fixed: Mapping[str, Any], space: Space) -> dict[str, Any]:
    """What a study's trials share: corpus, preset, epochs, held-out split, search space and every other setting."""
    config = preset_config(dict(fixed)).to_dict()
    settings = {**config, **dict(space.fixed)}
    from engine.download import sha256_of

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
    same: dict[str, Any] = json.loads(json.dumps(identity))
    return same


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


# ----- storage -----


def resolve_storage(url: str | None, cwd: Path | None = None) -> tuple[str, list[str]]:
    """The SQLAlchemy URL to use and notes for the user. None: a SQLite file in the working directory.

    postgresql:// and postgres:// are rewritten to postgresql+psycopg:// (the psycopg 3 driver, rnn-tui's
    [postgres] extra; SQLAlchemy's plain postgresql:// means psycopg2, which rnn-tui does not install).
    """
    notes: list[str] = []
    if not url:
        path = (cwd or Path.cwd()) / DEFAULT_STORAGE_FILE
        return f"sqlite:///{path}", notes
    url = url.strip()
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            url = "postgresql+psycopg://" + url[len(plain) :]
            notes.append(f"storage: {plain} read as postgresql+psycopg:// (the psycopg 3 driver)")
    return url, notes


def shown_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def open_storage(url: str, grace: float = GRACE_SECONDS, write: bool = True) -> optuna.storages.RDBStorage:
    """An Optuna RDBStorage on url with heartbeats; a malformed, unreachable or (write) read-only one is a one-line
    SweepError. Opening is not retried: a wrong URL should fail at once, an outage later is waited out."""
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    quiet_optuna()
    import optuna

    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        raise SweepError(f"malformed storage URL {url!r}: {first_line(exc)}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        uri = database.startswith("file:")  # sqlite:///file:PATH?mode=ro&uri=true: SQLite opens it as a URI
        if database and database != ":memory:" and not uri and not Path(database).expanduser().parent.is_dir():
            raise SweepError(f"storage {url}: the folder {Path(database).parent} does not exist")
        if write and database and database != ":memory:" and not uri:
            path = Path(database).expanduser()
            if (path.exists() and not os.access(path, os.W_OK)) or not os.access(path.parent, os.W_OK):
                raise SweepError(read_only_message(url))
        connect_args: dict[str, Any] = {"timeout": 60}  # workers of one machine take turns on the file's lock
    elif backend == "postgresql":
        connect_args = {"connect_timeout": 10}
    else:
        connect_args = {}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs={"connect_args": connect_args, "pool_pre_ping": True},
                # Heartbeats are recorded by Heartbeat and stale trials failed by reap (above)
                # (with the reason, and re-queued): Optuna's own thread dies on the first storage error.
                heartbeat_interval=max(1, round(grace / 6)),
                grace_period=max(1, round(grace)),
            )
        except ImportError as exc:
            missing = POSTGRES.missing(f"storage {shown_url(url)}") if backend == "postgresql" else None
            message = missing or f"storage {shown_url(url)}: its database driver is not installed ({exc})"
            raise SweepError(message) from None
        except sqlalchemy.exc.NoSuchModuleError:
            raise SweepError(f"storage {shown_url(url)}: unknown database kind {parsed.drivername!r}") from None
        except sqlalchemy.exc.IntegrityError:
            # Another process created the same fresh database's tables at the same moment: they exist now.
            time.sleep(0.2 * (attempt + 1))
        except Exception as exc:  # OperationalError (unreachable, bad password), ArgumentError...
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            first = reason[0] if reason else type(exc).__name__
            if "readonly" in first:
                raise SweepError(read_only_message(url)) from None
            raise SweepError(f"cannot open storage {shown_url(url)}: {first}") from None
    raise SweepError(f"cannot open storage {shown_url(url)}: its tables could not be created")


def read_only_message(url: str) -> str:
    return (
        f"storage {shown_url(url)} is read-only: a sweep records every trial there; give a writable file "
        "(or copy it) with --storage"
    )


def quiet_optuna() -> None:
    """Optuna logs every trial and warns that heartbeats are experimental: the monitor prints its own lines."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # its per-trial warnings would repeat our lines with tracebacks
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Trials are run by ask and tell (each storage call waits out an outage), with our own Heartbeat.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 8), reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    # The median of earlier trials at the same epoch, after a warm-up: GRU and LSTM start slower than a plain
    # RNN, and a pruner that judged them at epoch 1 would keep only fast starters.
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=max(1, epochs // 5))


def make_sampler(seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    # constant_liar: parallel workers do not all pick the same point while earlier trials still run.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def compared_settings(fixed: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(fixed.items()) if k not in NOT_COMPARED}


def open_study(
    spec: SweepSpec, storage: optuna.storages.BaseStorage, worker: int = 0, check: bool = False
) -> optuna.Study:
    """Create the study, or load it when it exists; check: a study whose identity differs is refused."""
    try:
        return _open_study(spec, storage, worker, check)
    except Exception as exc:
        if is_read_only(exc):  # SQLite's "attempt to write a readonly database"
            raise SweepError(read_only_message(spec.storage)) from None
        raise


def _open_study(spec: SweepSpec, storage: optuna.storages.BaseStorage, worker: int, check: bool) -> optuna.Study:
    import optuna

    sampler_seed = None if spec.sampler_seed is None else spec.sampler_seed + worker
    study = optuna.create_study(
        study_name=spec.study,
        storage=storage,
        direction="minimize",
        load_if_exists=True,
        sampler=make_sampler(sampler_seed),
        pruner=make_pruner(spec.pruner, spec.fixed["epochs"]),
    )
    if not check:
        return study
    wanted = spec.identity or study_identity(spec.fixed, spec.space)
    existing = study.user_attrs.get("identity")
    if existing is None:
        # A study made before identities were stored knows only the flags given: those must match.
        old = study.user_attrs.get("fixed")
        flags = json.loads(json.dumps(compared_settings(spec.fixed)))
        if old is not None and {k: v for k, v in old.items() if k != "seed"} != flags:
            differ = sorted(set(old) ^ set(flags) | {k for k in old if k in flags and old[k] != flags[k]})
            shown = ", ".join(
                f"{k.replace('_', '-')} {old.get(k, 'default')}→{flags.get(k, 'default')}" for k in differ
            )
            raise SweepError(
                f"study {spec.study!r} was run with other fixed settings ({shown}); its trials would not compare: "
                "give another --study name, or the same flags"
            )
        study.set_user_attr("identity", wanted)
        study.set_user_attr("fixed", flags)
        study.set_user_attr("space", spec.space.describe())
        study.set_user_attr("objective", OBJECTIVE_HELDOUT)
        return study
    difference = identity_difference(spec.study, existing, wanted)
    if difference:
        raise SweepError(difference)
    return study


def load_study_of(storage_url: str, study_name: str, grace: float = GRACE_SECONDS, write: bool = False) -> optuna.Study:
    """A study to read (the app, --reap); a missing one is a one-line SweepError naming those there."""
    import optuna

    storage = open_storage(storage_url, grace, write=write)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        there = f"; studies there: {', '.join(names)}" if names else "; it has no studies yet"
        raise SweepError(f"no study {study_name!r} in {shown_url(storage_url)}{there}") from None


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
