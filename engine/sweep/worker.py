"""A sweep's worker process: it takes trials one at a time by ask and tell until its budget ends.

A trial is an ordinary engine run built by engine.session.open_session, whose per-epoch held-out perplexity is
reported to Optuna's pruner; it runs under a heartbeat (engine.sweep.study.Heartbeat). A shared ticket count
spreads --trials over the workers. A trial that diverges is recorded PRUNED with the engine's reason (so the
sampler learns the region is bad); one that raises is FAIL with its reason; one stopped by a signal, or whose
monitor process is gone, is failed and its settings queued again. Lines for the user go to the monitor, which
prints them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from engine.errors import RnnTuiError
from engine.outputs import open_for_appending
from engine.signals import StopOnSignals, exit_code
from engine.sweep.space import suggest
from engine.sweep.spec import (
    DEFAULT_EPOCHS,
    EXIT_LOST,
    EXIT_STORAGE,
    EXIT_USAGE,
    HOST,
    OBJECTIVE_FALLBACK,
    OBJECTIVE_HELDOUT,
    Notify,
    SweepSpec,
)
from engine.sweep.study import (
    Heartbeat,
    Patience,
    StorageLost,
    fail_and_requeue,
    heartbeat_interval,
    heartbeat_storage,
    open_storage,
    open_study,
    reap,
    storage_reason,
)
from engine.sweep.trials import format_params

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.sharedctypes import Synchronized

    import optuna

    from engine.trainer import Trainer

    Tickets = Synchronized[int] | None  # this command's --trials left (None: no limit, its --timeout ends it)
    Messages = Queue[tuple[str, int, str]]  # (kind, worker, line) for the monitor


class TrialFailed(Exception):
    """A trial's run raised or could not start; its reason is the message."""


class SweepStopped(Exception):
    """The user stopped the sweep while this trial ran."""


@dataclass
class TrialRun:
    """What a worker knows of the trial it is running, for the signal handler and for re-queueing."""

    number: int = -1
    params: dict[str, Any] = field(default_factory=dict)
    trainer: Trainer | None = None
    stop_reason: str | None = None  # why the worker stops, when not a signal (its monitor process is gone)


class TrialLost(Exception):
    """The trial cannot be recorded by this worker: another process failed it (its heartbeat lapsed)."""


def trial_command_overrides(spec: SweepSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    return {**spec.fixed, **params}


def trial_seed(spec: SweepSpec) -> int:
    """The seed a trial trains with: the one --seed fixes, else a fresh one, stored so the trial can be re-run."""
    seed = spec.fixed.get("seed")
    return int(seed) if seed is not None else secrets.randbelow(2**31)


def run_trial(
    trial: optuna.Trial, spec: SweepSpec, current: TrialRun, stop: StopOnSignals, patience: Patience, tell: Notify
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
    lowest: float = min(h["val_perplexity"] if h["val_perplexity"] is not None else h["perplexity"] for h in history)
    return lowest


def save_trial(trainer: Trainer, trial: optuna.Trial, save: str, patience: Patience, tell: Notify) -> None:
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


def take_ticket(tickets: Tickets) -> bool:
    """One trial's worth of this command's --trials budget (None: unlimited, the timeout ends the sweep)."""
    if tickets is None:
        return True
    with tickets.get_lock():
        if tickets.value <= 0:
            return False
        tickets.value -= 1
        return True


def give_back_ticket(tickets: Tickets, count: int = 1) -> None:
    """A lost trial (stopped, its process killed, failed by a heartbeat check) does not count against --trials."""
    if tickets is not None and count:
        with tickets.get_lock():
            tickets.value += count


def budget_left(tickets: Tickets, deadline: float | None) -> bool:
    if deadline is not None and time.time() >= deadline:
        return False
    return tickets is None or tickets.value > 0


def stop_reason(stop: StopOnSignals, current: TrialRun) -> str:
    if current.stop_reason:
        return current.stop_reason
    name = signal.Signals(stop.received).name if stop.received is not None else "a signal"
    return f"stopped by {name}"


def stopped_code(stop: StopOnSignals) -> int:
    """128 + the signal's number, as the engine's headless runs exit (130 ctrl+c, 143 SIGTERM, 129 SIGHUP)."""
    return exit_code(stop.received if stop.received is not None else signal.SIGINT)


def run_one(
    study: optuna.Study, spec: SweepSpec, current: TrialRun, stop: StopOnSignals, patience: Patience, tell: Notify
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
    with Heartbeat(heartbeat_storage(study), trial._trial_id, heartbeat_interval(spec.grace)):
        try:
            value, state = run_trial(trial, spec, current, stop, patience, tell), TrialState.COMPLETE
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except TrialFailed:
            state = TrialState.FAIL
        except SweepStopped:
            reason = f"{stop_reason(stop, current)}; queued again"
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


def worker_main(spec: SweepSpec, worker: int, tickets: Tickets, deadline: float | None, messages: Messages) -> None:
    """A worker process: run trials until the budget, the deadline or a stop ends it; its exit code says which.

    0: budget or deadline reached; EXIT_STORAGE: the database stayed away; 128 + N: stopped by signal N (or its
    monitor process is gone). Lines for the user go to the monitor through messages, which prints them.
    """
    os.environ["OMP_NUM_THREADS"] = str(spec.threads)  # before torch loads: no oversubscribing OpenMP team
    current = TrialRun()

    def tell(kind: str, text: str) -> None:
        with contextlib.suppress(Exception):  # the monitor is gone: nobody to tell
            messages.put((kind, worker, text))

    def stop_training() -> None:
        trainer = current.trainer
        if trainer is not None:
            trainer.stop()

    patience = Patience(spec.storage_patience, tell)
    # Every signal stops the trial's training (never Interrupted: the trial must be failed and queued again).
    with StopOnSignals(stop_training, again=lambda signum: stop_training()) as stop:
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


def watch_parent(stop: StopOnSignals, current: TrialRun) -> None:
    """Stop when the monitor process is gone (killed): a worker never trains on orphaned.

    The trial is recorded as lost with its command, not as stopped by the user (nobody asked for it).
    """
    parent = os.getppid()

    def watch() -> None:
        while not stop.requested:
            if os.getppid() != parent:
                current.stop_reason = f"its sweep command (pid {parent}) ended"
                stop.request(signal.SIGTERM)
                return
            time.sleep(1)

    threading.Thread(target=watch, name="rnn-tui-sweep-parent-watch", daemon=True).start()
