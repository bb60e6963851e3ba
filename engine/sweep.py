"""`rnn-tui sweep`: an Optuna study over training settings, ranked by held-out perplexity.

Process layout. The command's own process is the monitor: it opens (or creates) the study, checks its identity
(engine.study), starts --jobs worker processes, prints (through its caller's callbacks: the engine prints
nothing) a line for every trial that starts here and every trial that finishes in the study (from its workers,
other processes or other machines sharing the storage), a live progress line, and at the end the best trial as
an exact `rnn-tui train` command. It never imports torch. Each worker takes trials one at a time by ask and tell
(a shared ticket count spreads --trials over the workers); a trial is an ordinary engine run built by
engine.session.open_session, whose per-epoch held-out perplexity is reported to Optuna's pruner.

Faults. A trial that diverges is recorded PRUNED with the engine's reason (so the sampler learns the region is
bad); one that raises is FAIL with its reason; either way the sweep goes on. Every storage call waits out an
outage (engine.study.Patience, --storage-patience). A trial that is lost (stopped by a signal, its process
killed, its machine silent past --grace) is failed with the reason, its settings queued again, and not counted
against --trials; a worker process that dies is replaced while the budget lasts. The exit codes are EXIT_*.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import queue
import secrets
import shlex
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from engine.config import TrainConfig, to_argv
from engine.errors import RnnTuiError, first_line
from engine.outputs import open_for_appending
from engine.space import Space, suggest
from engine.study import (
    GRACE_SECONDS,
    NOT_COMPARED,
    SAY_EVERY,
    STORAGE_PATIENCE,
    Heartbeat,
    Patience,
    StorageLost,
    fail_and_requeue,
    identity_difference,
    is_read_only,
    reap,
    storage_reason,
    study_identity,
)

DEFAULT_STORAGE_FILE = "rnn-tui-sweeps.db"
DEFAULT_STUDY = "rnn-tui"
DEFAULT_EPOCHS = 20
DEFAULT_TRIALS = 20  # when neither --trials nor --timeout is given
PRUNERS = ("median", "halving", "none")
POLL_SECONDS = 0.5
HOST = socket.gethostname()
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


class TrialFailed(Exception):
    """A trial's run raised or could not start; its reason is the message."""


class SweepStopped(Exception):
    """The user stopped the sweep while this trial ran."""


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


# ----- storage -----


def resolve_storage(url: str | None, cwd: Path | None = None) -> tuple[str, list[str]]:
    """The SQLAlchemy URL to use and notes for the user. None: a SQLite file in the working directory.

    postgresql:// and postgres:// are rewritten to postgresql+psycopg:// (the psycopg 3 driver installed with
    rnn-tui; SQLAlchemy's plain postgresql:// means psycopg2, which is not).
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


def open_storage(url: str, grace: float = GRACE_SECONDS, write: bool = True) -> Any:
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
                # Heartbeats are recorded by engine.study.Heartbeat and stale trials failed by engine.study.reap
                # (with the reason, and re-queued): Optuna's own thread dies on the first storage error.
                heartbeat_interval=max(1, round(grace / 6)),
                grace_period=max(1, round(grace)),
            )
        except ImportError as exc:
            raise SweepError(f"storage {shown_url(url)}: its database driver is not installed ({exc})") from None
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
    # Trials are run by ask and tell (each storage call waits out an outage), with engine.study's heartbeat.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def make_pruner(name: str, epochs: int) -> Any:
    import optuna

    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 8), reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    # The median of earlier trials at the same epoch, after a warm-up: GRU and LSTM start slower than a plain
    # RNN, and a pruner that judged them at epoch 1 would keep only fast starters.
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=max(1, epochs // 5))


def make_sampler(seed: int | None) -> Any:
    import optuna

    # constant_liar: parallel workers do not all pick the same point while earlier trials still run.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def compared_settings(fixed: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(fixed.items()) if k not in NOT_COMPARED}


def open_study(spec: SweepSpec, storage: Any, worker: int = 0, check: bool = False) -> Any:
    """Create the study, or load it when it exists; check: a study whose identity differs is refused."""
    try:
        return _open_study(spec, storage, worker, check)
    except Exception as exc:
        if is_read_only(exc):  # SQLite's "attempt to write a readonly database"
            raise SweepError(read_only_message(spec.storage)) from None
        raise


def _open_study(spec: SweepSpec, storage: Any, worker: int, check: bool) -> Any:
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


# ----- stopping: one place for the signals, to be swapped for the engine's shared helper later -----


class StopSignals:
    """Turns SIGINT, SIGTERM and SIGHUP into a stop request (a second SIGINT in the monitor: leave at once).

    Used as a context manager; the previous handlers come back on exit. Only the main thread can install
    handlers: elsewhere (a test calling in a thread) this does nothing and stop() is still callable.
    """

    SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)

    def __init__(self, on_stop: Callable[[int], None] | None = None) -> None:
        self.requested = False
        self.count = 0
        self.first: int | None = None  # the first signal received
        self.on_stop = on_stop
        self.reason: str | None = None  # why, when not a signal (a worker whose monitor is gone)
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.first is None:
            self.first = signum
        self.requested = True
        if self.on_stop is not None:
            self.on_stop(signum)


# ----- the worker side -----


@dataclass
class TrialRun:
    """What a worker knows of the trial it is running, for the signal handler and for re-queueing."""

    number: int = -1
    params: dict[str, Any] = field(default_factory=dict)
    trainer: Any = None


class TrialLost(Exception):
    """The trial cannot be recorded by this worker: another process failed it (its heartbeat lapsed)."""


def trial_command_overrides(spec: SweepSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    return {**spec.fixed, **params}


def trial_seed(spec: SweepSpec) -> int:
    """The seed a trial trains with: the one --seed fixes, else a fresh one, stored so the trial can be re-run."""
    seed = spec.fixed.get("seed")
    return int(seed) if seed is not None else secrets.randbelow(2**31)


def run_trial(
    trial: Any, spec: SweepSpec, current: TrialRun, stop: StopSignals, patience: Patience, tell: Notify
) -> float:
    """The objective: one engine run with the trial's settings; its best held-out perplexity.

    Every storage call waits out an outage (patience); training pauses meanwhile, since each epoch's figure must
    reach the pruner before the next epoch starts.
    """
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError

    from engine import events
    from engine.session import open_session

    store = patience.call
    params = store(suggest, trial, spec.space, spec.fixed)  # a suggestion is stored: asking again gives it back
    current.number, current.params, current.trainer = trial.number, params, None
    overrides = {**trial_command_overrides(spec, params), "seed": trial_seed(spec)}
    store(trial.set_user_attr, "host", HOST)
    store(trial.set_user_attr, "pid", os.getpid())
    store(trial.set_user_attr, "seed", overrides["seed"])
    store(trial.set_user_attr, "threads", spec.threads)
    store(trial.set_user_attr, "config", json.loads(json.dumps(overrides)))
    tell("start", f"trial {trial.number:>3}  starts  {format_params(params)}  seed {overrides['seed']}")
    history: list[dict[str, Any]] = []
    failure: list[str] = []
    pruned: list[str] = []
    lost: list[BaseException] = []  # StorageLost or TrialLost raised in the listener: the trainer would swallow them
    started = time.perf_counter()
    metrics: IO[str] | None = None
    epochs = int(overrides.get("epochs", DEFAULT_EPOCHS))

    def record(event: events.EpochEnd) -> None:
        heldout = event.val_perplexity is not None
        value = event.val_perplexity if event.val_perplexity is not None else event.perplexity
        value = value if math.isfinite(value) else float("inf")
        entry = event.record()
        history.append(entry)
        elapsed = time.perf_counter() - started
        try:
            store(trial.set_user_attr, "history", history)
            store(trial.set_user_attr, "objective", OBJECTIVE_HELDOUT if heldout else OBJECTIVE_FALLBACK)
            best = min(min(h["val_perplexity"] or h["perplexity"] for h in history), 1e300)
            store(trial.set_user_attr, "best", best)
            store(trial.set_user_attr, "seconds", elapsed)
            store(trial.report, value, event.epoch)
            prune = store(trial.should_prune)
        except (UpdateFinishedTrialError, RuntimeError) as exc:
            raise TrialLost(str(exc)) from None
        if metrics is not None:
            metrics.write(json.dumps({"trial": trial.number, **entry}) + "\n")
            metrics.flush()
        tell("epoch", json.dumps([trial.number, event.epoch, epochs, value, elapsed]))
        if prune:
            pruned.append(f"pruned at epoch {event.epoch}: {value:,.1f} is worse than earlier trials at that epoch")
            session.trainer.stop()

    def listener(event: events.Event) -> None:
        if isinstance(event, events.EpochEnd) and not lost:
            try:
                record(event)
            except (StorageLost, TrialLost) as exc:
                lost.append(exc)
                session.trainer.stop()
        elif isinstance(event, events.Failed):
            failure.append(event.message)

    try:
        if spec.metrics:
            metrics = open_for_appending(spec.metrics, "--metrics")  # closed below
        session = open_session(overrides, corpus_url=spec.corpus_url, threads=spec.threads)
        session.trainer.listener = listener
        current.trainer = session.trainer
        if not stop.requested:
            session.trainer.run()
        if spec.save and history and not lost:
            save_trial(session.trainer, trial, spec.save, patience, tell)
    except RnnTuiError as exc:
        failure.append(str(exc))
    except Exception as exc:  # a bug or an environment fault: recorded, the sweep goes on
        failure.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    finally:
        current.trainer = None
        if metrics is not None:
            metrics.close()
    if lost:
        raise lost[0]
    store(trial.set_user_attr, "seconds", time.perf_counter() - started)
    if stop.requested:
        raise SweepStopped()
    if failure:
        reason = failure[0]
        store(trial.set_user_attr, "reason", reason)
        if "diverged" in reason:  # pruned, not failed: the sampler then learns to avoid the region
            raise optuna.TrialPruned(reason)
        raise TrialFailed(reason)
    if pruned:
        store(trial.set_user_attr, "reason", pruned[0])
        raise optuna.TrialPruned(pruned[0])
    if not history:
        store(trial.set_user_attr, "reason", "no epoch finished")
        raise TrialFailed("no epoch finished")
    return min(h["val_perplexity"] if h["val_perplexity"] is not None else h["perplexity"] for h in history)


def save_trial(trainer: Any, trial: Any, save: str, patience: Patience, tell: Notify) -> None:
    """Save a trial's weights as NAME.trial-N.ckpt. A failed write (a full disk) costs the checkpoint, not the
    trial's result: it is recorded (user attribute save_error) and said, and the sweep goes on."""
    path = trial_checkpoint(save, trial.number)
    try:
        trainer.save(str(path))
    except RnnTuiError as exc:
        patience.call(trial.set_user_attr, "save_error", str(exc))
        tell("error", f"trial {trial.number}: checkpoint not saved: {exc}")


def trial_checkpoint(save: str, number: int) -> Path:
    path = Path(save).expanduser()
    return path.with_name(f"{path.stem}.trial-{number}{path.suffix or '.ckpt'}")


def take_ticket(tickets: Any) -> bool:
    """One trial's worth of this command's --trials budget (None: unlimited, the timeout ends the sweep)."""
    if tickets is None:
        return True
    with tickets.get_lock():
        if tickets.value <= 0:
            return False
        tickets.value -= 1
        return True


def give_back_ticket(tickets: Any, count: int = 1) -> None:
    """A lost trial (stopped, its process killed, failed by a heartbeat check) does not count against --trials."""
    if tickets is not None and count:
        with tickets.get_lock():
            tickets.value += count


def budget_left(tickets: Any, deadline: float | None) -> bool:
    if deadline is not None and time.time() >= deadline:
        return False
    return tickets is None or tickets.value > 0


def stop_reason(stop: StopSignals) -> str:
    if stop.reason:
        return stop.reason
    name = signal.Signals(stop.first).name if stop.first is not None else "a signal"
    return f"stopped by {name}"


def run_one(
    study: Any, spec: SweepSpec, current: TrialRun, stop: StopSignals, patience: Patience, tell: Notify
) -> bool:
    """Ask for a trial, run it under a heartbeat and tell its outcome; False when the trial was lost."""
    import optuna
    from optuna.trial import TrialState

    if patience.may_reap(spec.grace):
        for number, reason in patience.call(reap, study, spec.grace):
            tell("lost", f"trial {number:>3}  failed: {reason}")
    trial = patience.call(study.ask)
    current.number, current.params = trial.number, {}
    tell("asked", json.dumps([os.getpid(), trial.number]))  # the monitor fails it if this process dies
    value: float | None = None
    with Heartbeat(study._storage, trial._trial_id, heartbeat_interval(spec.grace)):
        try:
            value, state = run_trial(trial, spec, current, stop, patience, tell), TrialState.COMPLETE
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except TrialFailed:
            state = TrialState.FAIL
        except SweepStopped:
            reason = f"{stop_reason(stop)}; queued again"
            frozen = patience.call(study._storage.get_trial, trial._trial_id)
            patience.call(fail_and_requeue, study, frozen, reason)
            return False
        except TrialLost:
            tell("lost", f"trial {trial.number:>3}  was failed by another process meanwhile; its result is not kept")
            return False
    # skip_if_finished: a tell retried after its commit went through finds the trial finished by itself.
    finished = patience.call(study.tell, trial, value, state=state, skip_if_finished=True)
    if finished.state != state:
        tell("lost", f"trial {trial.number:>3}  was failed by another process meanwhile; its result is not kept")
        return False
    return True


def worker_main(spec: SweepSpec, worker: int, tickets: Any, deadline: float | None, messages: Any) -> None:
    """A worker process: run trials until the budget, the deadline or a stop ends it; its exit code says which.

    0: budget or deadline reached; EXIT_STORAGE: the database stayed away; 128 + N: stopped by signal N (or its
    monitor process is gone). Lines for the user go to the monitor through messages, which prints them.
    """
    os.environ["OMP_NUM_THREADS"] = str(spec.threads)  # before torch loads: no oversubscribing OpenMP team
    current = TrialRun()

    def tell(kind: str, text: str) -> None:
        with contextlib.suppress(Exception):  # the monitor is gone: nobody to tell
            messages.put((kind, worker, text))

    def on_stop(signum: int) -> None:
        trainer = current.trainer
        if trainer is not None:
            trainer.stop()

    patience = Patience(spec.storage_patience, tell)
    with StopSignals(on_stop) as stop:
        watch_parent(stop, current)
        try:
            storage = open_storage(spec.storage, spec.grace)
            study = patience.call(open_study, spec, storage, worker)
        except StorageLost as exc:
            tell("error", f"worker {worker}: {exc}")
            sys.exit(EXIT_STORAGE)
        except RnnTuiError as exc:
            tell("error", f"worker {worker}: {exc}")
            sys.exit(EXIT_USAGE)
        try:
            while not stop.requested and (deadline is None or time.time() < deadline) and take_ticket(tickets):
                if not run_one(study, spec, current, stop, patience, tell):
                    give_back_ticket(tickets)
        except StorageLost as exc:
            tell("storage", f"worker {worker}: {exc}")
            sys.exit(EXIT_STORAGE)
        except Exception as exc:  # a fault not foreseen: one line, and the monitor replaces this worker
            tell("error", f"worker {worker} stops: {type(exc).__name__}: {storage_reason(exc)}")
            sys.exit(EXIT_LOST)
    if stop.requested:
        sys.exit(stopped_code(stop))


def watch_parent(stop: StopSignals, current: TrialRun) -> None:
    """Stop when the monitor process is gone (killed): a worker never trains on orphaned.

    The trial is recorded as lost with its command, not as stopped by the user (nobody asked for it).
    """
    parent = os.getppid()

    def watch() -> None:
        while not stop.requested:
            if os.getppid() != parent:
                stop.reason = f"its sweep command (pid {parent}) ended"
                stop._handle(signal.SIGTERM, None)
                return
            time.sleep(1)

    threading.Thread(target=watch, name="rnn-tui-sweep-parent-watch", daemon=True).start()


def heartbeat_interval(grace: float) -> float:
    """Beats often enough that a live trial is never older than the grace period (six beats fit in it)."""
    return max(0.5, grace / 6)


# ----- the monitor -----


def trial_state(trial: Any) -> str:
    name = trial.state.name.lower()
    return {"fail": "failed"}.get(name, name)


def trial_best(trial: Any) -> float | None:
    """The trial's best held-out (or labelled fallback) perplexity so far."""
    if trial.state.name == "COMPLETE" and trial.value is not None:
        return float(trial.value)
    best = trial.user_attrs.get("best")
    if best is not None:
        return float(best)
    values = [v for v in trial.intermediate_values.values() if v is not None and math.isfinite(v)]
    return min(values) if values else None


def uses_fallback(trial: Any) -> bool:
    return trial.user_attrs.get("objective") == OBJECTIVE_FALLBACK


def format_params(params: Mapping[str, Any]) -> str:
    def show(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return " ".join(f"{k}={show(v)}" for k, v in params.items())


def trial_seconds(trial: Any) -> float | None:
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    seconds = trial.user_attrs.get("seconds")
    return float(seconds) if seconds is not None else None


def progress_line(trial: Any, best: float | None) -> str:
    """'trial 7  complete  held-out ppl 312.4  best 290.1  lr=0.0021 cell=gru  12.3 s  [host]'."""
    value = trial_best(trial)
    label = "TRAIN ppl*" if uses_fallback(trial) else "held-out ppl"
    figure = f"{label} {value:,.1f}" if value is not None and math.isfinite(value) else f"{label} -"
    best_text = f"best {best:,.1f}" if best is not None else "best -"
    seconds = trial_seconds(trial)
    where = trial.user_attrs.get("host")
    origin = f"  [{where}]" if where and where != HOST else ""
    reason = trial.user_attrs.get("reason")
    why = f"  ({reason.split(';')[0]})" if reason and trial.state.name != "COMPLETE" else ""
    time_text = f"{seconds:.1f} s" if seconds is not None else "- s"
    return (
        f"trial {trial.number:>3}  {trial_state(trial):<8}  {figure:<20}  {best_text:<12}  "
        f"{format_params(trial.params)}  {time_text}{origin}{why}"
    )


def best_trial(study: Any) -> Any | None:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and t.value is not None]
    return min(complete, key=lambda t: t.value) if complete else None


def train_command(
    config: Mapping[str, Any], params: Mapping[str, Any] | None = None, threads: int | None = None
) -> str:
    """The `rnn-tui train` command line that trains a trial's settings on its own, exactly.

    config: the trial's whole settings (its `config` user attribute: the fixed ones, the space's fixed values, the
    sampled ones and the seed). Every setting that differs from its preset's value is named (to_argv), and always
    the sampled ones, the epochs and the seed; threads too, since a different torch thread count may sum in another
    order.
    """
    params = params or {}
    words = ["rnn-tui", "train", "--headless", *to_argv({**config, **params}, always=(*params, "epochs", "seed"))]
    if threads:
        words += ["--threads", str(threads)]
    return shlex.join(words)


def trial_train_command(trial: Any) -> str:
    """The ready command of a stored trial (older trials without a config: their params over nothing). It trains
    up to the trial's best epoch, so its last held-out perplexity printed is the trial's value, digit for digit."""
    config = dict(trial.user_attrs.get("config") or {})
    epoch = best_epoch(trial)
    if config and epoch is not None:
        config["epochs"] = epoch
    return train_command(config, trial.params, trial.user_attrs.get("threads"))


def finished_states() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def fail_trials_of(study: Any, pid: int, reason: str, numbers: Collection[int] = ()) -> list[int]:
    """Fail (and re-queue) the running trials of a dead worker process of this machine: those it recorded as its
    own, and numbers (those it said it asked for: it may have died before recording its pid)."""
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        mine = trial.user_attrs.get("pid") == pid and trial.user_attrs.get("host") == HOST
        if (mine or trial.number in numbers) and fail_and_requeue(study, trial, reason):
            failed.append(trial.number)
    return failed


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
    TrainConfig(**{k: v for k, v in spec.fixed.items()})  # a bad fixed setting fails here, not in every trial


class EpochProgress:
    """The live progress line: each running trial's epoch, and ETAs from the epochs and trials seen so far."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        # worker → its trial's number, epoch, epochs, value, seconds (one trial a worker: a new one replaces it)
        self.running: dict[int, tuple[int, int, int, float, float]] = {}
        self.trial_seconds: list[float] = []
        self.eta = ""  # the time left for this command's budget, once a trial has finished

    def update(self, worker: int, payload: str) -> str:
        number, epoch, epochs, value, seconds = json.loads(payload)
        self.running[worker] = (int(number), int(epoch), int(epochs), float(value), float(seconds))
        return self.line()

    def finished(self, number: int, seconds: float | None) -> None:
        for worker, entry in list(self.running.items()):
            if entry[0] == number:
                del self.running[worker]
        if seconds is not None:
            self.trial_seconds.append(seconds)

    def line(self) -> str:
        parts = []
        for number, epoch, epochs, value, seconds in sorted(self.running.values()):
            eta = seconds / epoch * (epochs - epoch) if epoch else 0.0
            parts.append(f"trial {number} epoch {epoch}/{epochs} ppl {value:,.1f} ETA {clock(eta)}")
        if self.eta:
            parts.append(self.eta)
        return "  |  ".join(parts)

    def sweep_eta(self, left: int) -> str:
        if not self.trial_seconds or left <= 0:
            return ""
        mean = sum(self.trial_seconds) / len(self.trial_seconds)
        self.eta = f"about {clock(mean * left / self.spec.jobs)} for the {left} trial{'s' * (left != 1)} left"
        return self.eta


def clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return (
        f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else (f"{seconds // 60}:{seconds % 60:02d}")
    )


def run_sweep(
    spec: SweepSpec,
    out: Callable[[str], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Run the sweep to its end; its exit code (see EXIT_*). out: each line for the user; progress: the live
    progress line, replaced at each epoch (a terminal shows it in place; None drops it)."""
    say = out or (lambda line: None)
    try:
        return _run_sweep(spec, say, progress or (lambda line: None))
    except StorageLost as exc:
        say(f"rnn-tui sweep: {exc}; running trials are failed by the next sweep process or `rnn-tui sweep --reap`")
        return EXIT_STORAGE
    except RnnTuiError:
        raise  # bad input or a study that does not match: the command line says it in one line, exit 2
    except Exception as exc:  # a fault not foreseen: one line, not a traceback, and a failing exit code
        say(f"rnn-tui sweep: stopped by an unexpected error: {type(exc).__name__}: {storage_reason(exc)}")
        return EXIT_LOST


def _run_sweep(spec: SweepSpec, say: Callable[[str], None], progress: Callable[[str], None]) -> int:
    check_spec(spec)
    identity = study_identity(spec.fixed, spec.space)
    spec = replace(spec, identity=identity)
    last_said: dict[str, float] = {}

    def notify(kind: str, text: str) -> None:
        # The monitor and every worker meet the same outage: its line is said once per SAY_EVERY seconds.
        if kind in ("outage", "back"):
            now = time.monotonic()
            if now - last_said.get(kind, -math.inf) < SAY_EVERY:
                return
            last_said[kind] = now
        say(text)

    patience = Patience(spec.storage_patience, notify)
    storage = open_storage(spec.storage, spec.grace)
    study = patience.call(open_study, spec, storage, check=True)
    earlier = patience.call(study.get_trials, deepcopy=False)
    seen = {t.number for t in earlier if t.state in finished_states()}
    best = best_trial(study)
    say(
        f"study {spec.study!r} in {shown_url(spec.storage)}: "
        + (f"{len(earlier)} earlier trials, continuing" if earlier else "new")
        + (f", best so far {best.value:,.1f} (trial {best.number})" if best is not None else "")
    )
    say(f"searching {spec.space.describe()}")
    budget = f"{spec.trials} trials by this command" if spec.trials else "no trial limit"
    if spec.timeout:
        budget += f", {spec.timeout:g} s"
    say(
        f"{budget}, {spec.fixed['epochs']} epochs each, {spec.jobs} worker process{'es' * (spec.jobs > 1)} × "
        f"{spec.threads} torch thread{'s' * (spec.threads > 1)}, pruner {spec.pruner}; objective: best held-out "
        "perplexity (minimised)"
    )
    deadline = time.time() + spec.timeout if spec.timeout else None
    context = multiprocessing.get_context("spawn")  # no forked torch or database connections
    tickets = context.Value("i", spec.trials) if spec.trials is not None else None
    messages = context.Queue()

    started_pids: set[int] = set()
    done_here = 0  # trials of this command's workers that ran to an end

    def start_worker(index: int) -> Any:
        process = context.Process(
            target=worker_main, args=(spec, index, tickets, deadline, messages), name=f"rnn-tui-sweep-{index}"
        )
        process.start()
        if process.pid is not None:
            started_pids.add(process.pid)
        return process

    workers: list[Any] = []
    stopping = False
    fallback_said = False
    replaced = 0
    max_replacements = 3 * spec.jobs
    outcome = EXIT_OK
    ending = ""
    live = EpochProgress(spec)

    def signal_workers(sig: int) -> None:
        for process in workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, sig)

    def on_stop(signum: int) -> None:
        nonlocal stopping
        if stopping and signum == signal.SIGINT:  # a second ctrl+c: leave now (the monitor fails the trials)
            signal_workers(signal.SIGKILL)
            return
        stopping = True
        signal_workers(signal.SIGTERM)  # a terminal's ctrl+c reaches them already; SIGTERM sent to us does not

    def drain() -> None:
        while True:
            try:
                kind, worker, text = messages.get_nowait()
            except (queue.Empty, EOFError, OSError):
                return
            if kind == "epoch":
                progress(live.update(worker, text))
            elif kind == "asked":
                pid, number = json.loads(text)
                asked.setdefault(int(pid), set()).add(int(number))
            else:
                notify(kind, text)

    asked: dict[int, set[int]] = {}  # worker pid → the trials it asked for
    last_reap = time.monotonic()
    try:
        with StopSignals(on_stop) as stop:
            if stop.requested:
                return stopped_code(stop)
            for index in range(spec.jobs):
                workers.append(start_worker(index))
            if stopping:  # a signal that came while they started
                on_stop(signal.SIGTERM)
            while True:
                drain()
                # Whether all had ended before the check below: one ending after it is handled at the next poll.
                ended = not any(p.is_alive() for p in workers)
                for slot, process in enumerate(workers):
                    if process.is_alive() or process.pid is None or process.exitcode in (None, 0):
                        continue
                    code = process.exitcode
                    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
                    why = f"its worker process ended ({how}); queued again"
                    drain()  # what it said last (the trial it asked for)
                    lost = patience.call(fail_trials_of, study, process.pid, why, asked.pop(process.pid, ()))
                    give_back_ticket(tickets, len(lost))
                    for number in lost:
                        say(f"trial {number:>3}  failed: its worker process ended ({how}); queued again")
                    workers[slot] = _Ended(code)
                    if stopping:
                        continue
                    if code == EXIT_STORAGE:
                        ending, outcome = "the database stayed unreachable: this command stops", EXIT_STORAGE
                        stopping = True
                        signal_workers(signal.SIGTERM)
                    elif code == EXIT_USAGE:
                        ending, outcome = "a worker could not open the study", EXIT_USAGE
                    elif budget_left(tickets, deadline) and replaced < max_replacements:
                        replaced += 1
                        say(f"worker {slot} ended ({how}): a new worker process takes its place")
                        workers[slot] = start_worker(slot)
                    elif budget_left(tickets, deadline):
                        outcome = EXIT_LOST
                        ending = f"{replaced} worker processes replaced already: giving up"
                    # else: nothing left for it to run (another worker took its trial's ticket): not a loss
                if time.monotonic() - last_reap >= heartbeat_interval(spec.grace) and patience.may_reap(spec.grace):
                    last_reap = time.monotonic()
                    for number, reason in patience.call(reap, study, spec.grace):
                        say(f"trial {number:>3}  failed: {reason}")
                trials = patience.call(study.get_trials, deepcopy=False, states=finished_states())
                for trial in sorted(trials, key=lambda t: t.number):
                    if trial.number in seen:
                        continue
                    seen.add(trial.number)
                    live.finished(trial.number, trial_seconds(trial))
                    if (
                        trial.state.name == "COMPLETE"
                        and trial.value is not None
                        and (best is None or trial.value < best.value)
                    ):
                        best = trial
                    if uses_fallback(trial) and not fallback_said:
                        fallback_said = True
                        say(f"* {OBJECTIVE_FALLBACK}: ranked by memorisation, not generalisation")
                    say(progress_line(trial, best.value if best is not None else None))
                    mine = trial.user_attrs.get("host") == HOST and trial.user_attrs.get("pid") in started_pids
                    if mine and not str(trial.user_attrs.get("reason", "")).endswith("queued again"):
                        done_here += 1  # counted as --trials counts: a lost trial is run again
                        if spec.trials and live.sweep_eta(spec.trials - done_here):
                            progress(live.line())
                if ended and not any(p.is_alive() for p in workers):
                    break
                time.sleep(POLL_SECONDS)
        for process in workers:
            process.join()
    except Exception:
        # The monitor gives up (the database stayed away, or a fault not foreseen): its workers are stopped (killed
        # if they linger); trials left running are failed by a sweep process or --reap after the grace period.
        signal_workers(signal.SIGTERM)
        for process in workers:
            process.join(timeout=10)
        signal_workers(signal.SIGKILL)
        raise
    drain()
    summarize(study, spec, say, patience)
    if ending:
        say(ending)
    if stop.requested or (stopping and outcome == EXIT_OK):
        say(
            "stopped: running trials were recorded failed and queued again; the same command continues "
            f"study {spec.study!r}"
        )
        return stopped_code(stop)
    return outcome


class _Ended:
    """A worker slot whose process ended and was not replaced."""

    pid = None

    def __init__(self, exitcode: int) -> None:
        self.exitcode = exitcode

    def is_alive(self) -> bool:
        return False

    def join(self, timeout: float | None = None) -> None:
        pass


def stopped_code(stop: StopSignals) -> int:
    """128 + the signal's number, as the engine's headless runs exit (130 ctrl+c, 143 SIGTERM, 129 SIGHUP)."""
    from engine.signals import exit_code

    return exit_code(stop.first if stop.first is not None else signal.SIGINT)


def summarize(study: Any, spec: SweepSpec, say: Callable[[str], None], patience: Patience) -> None:
    trials = patience.call(study.get_trials, deepcopy=False)
    counts = {state: sum(trial_state(t) == state for t in trials) for state in STATES}
    say("study " + repr(spec.study) + ": " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    best = best_trial(study)
    if best is None:
        say("no trial completed yet: nothing to recommend")
        return
    label = "TRAINING perplexity (fallback)" if uses_fallback(best) else "held-out perplexity"
    epoch = best_epoch(best)
    at = f" (epoch {epoch})" if epoch is not None else ""
    say(f"best: trial {best.number}, {label} {best.value:f}{at}, {format_params(best.params)}")
    say(f"  {trial_train_command(best)}")


def best_epoch(trial: Any) -> int | None:
    values = [(v, e) for e, v in trial.intermediate_values.items() if v is not None and math.isfinite(v)]
    return min(values)[1] if values else None


def reap_command(storage_url: str, study_name: str, grace: float, say: Callable[[str], None]) -> int:
    """`rnn-tui sweep --reap`: fail and re-queue a study's trials whose machine stopped sending heartbeats."""
    import optuna

    study = load_study_of(storage_url, study_name, grace, write=True)
    lost = reap(study, grace)
    for number, reason in lost:
        say(f"trial {number:>3}  failed: {reason}")
    running = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))
    say(
        f"study {study_name!r}: {len(lost)} lost trial{'s' * (len(lost) != 1)} failed and queued again; "
        f"{running} running with a live heartbeat"
    )
    return EXIT_OK


# ----- reading a study back (the app's Sweep screen) -----


@dataclass(frozen=True)
class TrialRow:
    """One trial as the app lists it: plain data, readable from any thread."""

    number: int
    state: str  # running, complete, pruned, failed, waiting
    params: dict[str, Any]
    best: float | None  # best held-out perplexity (or the labelled fallback)
    fallback: bool  # best is a training perplexity: the engine gave no held-out figure
    epochs: int
    seconds: float | None
    host: str
    reason: str
    config: dict[str, Any]
    history: tuple[dict[str, Any], ...]
    best_epoch: int | None = None  # the epoch of the best figure: the ready command and Apply best train to it
    seed: int | None = None
    planned: int = 0  # the epochs the trial was to train
    command: str = ""  # its ready `rnn-tui train` command

    @property
    def form_settings(self) -> dict[str, Any]:
        """What Apply best writes into the form: the trial's settings, its seed, epochs up to its best epoch."""
        settings = {**self.config, **self.params}
        if self.seed is not None:
            settings["seed"] = self.seed
        if self.best_epoch is not None:
            settings["epochs"] = self.best_epoch
        return settings


def load_study_of(storage_url: str, study_name: str, grace: float = GRACE_SECONDS, write: bool = False) -> Any:
    """A study to read (the app, --reap); a missing one is a one-line SweepError naming those there."""
    import optuna

    storage = open_storage(storage_url, grace, write=write)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        there = f"; studies there: {', '.join(names)}" if names else "; it has no studies yet"
        raise SweepError(f"no study {study_name!r} in {shown_url(storage_url)}{there}") from None


def read_trials(storage_url: str, study_name: str) -> list[TrialRow]:
    """The trials of a study, in order; a missing study or unreachable storage is a one-line SweepError."""
    study = load_study_of(storage_url, study_name)
    rows = []
    for trial in study.get_trials(deepcopy=False):
        history = tuple(trial.user_attrs.get("history", ()))
        rows.append(
            TrialRow(
                number=trial.number,
                state=trial_state(trial),
                params=dict(trial.params) or dict(trial.system_attrs.get("fixed_params", {})),
                best=trial_best(trial),
                fallback=uses_fallback(trial),
                epochs=len(history),
                seconds=trial_seconds(trial),
                host=str(trial.user_attrs.get("host", "")),
                reason=str(trial.user_attrs.get("reason", "")),
                config=dict(trial.user_attrs.get("config", {})),
                history=history,
                best_epoch=best_epoch(trial),
                seed=trial.user_attrs.get("seed"),
                planned=int(trial.user_attrs.get("config", {}).get("epochs", 0)),
                command=trial_train_command(trial) if trial.user_attrs.get("config") else "",
            )
        )
    return rows


def param_importances(storage_url: str, study_name: str) -> dict[str, float]:
    """Each searched setting's share of the objective's variance over the complete trials (Optuna's fANOVA);
    a one-line SweepError while there are too few trials to tell."""
    import optuna

    study = load_study_of(storage_url, study_name)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        raise SweepError(f"importances need 2 complete trials, the study has {len(complete)}")
    try:
        with warnings.catch_warnings():  # its notes on stderr would scribble over the app's screen
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError) as exc:  # one value for every setting, a parameter absent from some trials
        raise SweepError(f"importances cannot be computed yet: {first_line(exc)}") from None


def trials_csv(rows: list[TrialRow], path: str | Path) -> Path:
    """Write the trials as CSV (one row a trial; each searched setting a column); the file written."""
    import csv

    names = sorted({name for row in rows for name in row.params})
    target = Path(path).expanduser()
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "state", "best_ppl", "best_epoch", "epochs", "seconds", "seed", "host", "reason",
                         *names, "command"])  # fmt: skip
        for row in rows:
            writer.writerow(
                [row.number, row.state, "" if row.best is None else repr(row.best), row.best_epoch or "",
                 row.epochs, "" if row.seconds is None else f"{row.seconds:.1f}", "" if row.seed is None else row.seed,
                 row.host, row.reason, *(row.params.get(name, "") for name in names), row.command]
            )  # fmt: skip
    return target


def sweep_arguments(
    fixed: Mapping[str, Any],
    searches: list[str],
    study: str,
    storage: str | None,
    trials: int,
    epochs: int,
    jobs: int,
    threads: int | None = None,
) -> list[str]:
    """The `rnn-tui sweep` arguments for settings fixed from a form (those the space searches are left out)."""
    from engine.space import parse_search

    searched = set()
    for text in searches:
        entry = parse_search(text)
        searched.add(entry[0] if isinstance(entry, tuple) else entry.name)
    args = ["sweep", "--study", study, "--trials", str(trials), "--epochs", str(epochs), "--jobs", str(jobs)]
    if storage:
        args += ["--storage", storage]
    if threads:
        args += ["--threads", str(threads)]
    args += to_argv({k: v for k, v in fixed.items() if k not in searched and k != "epochs"})
    for text in searches:
        args += ["--search", text]
    return args
