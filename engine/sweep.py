"""`rnn-tui sweep`: an Optuna study over training settings, ranked by held-out perplexity.

Process layout. The command's own process is the monitor: it opens (or creates) the study, starts --jobs
worker processes, prints a line for every trial that finishes in the study (from its workers, other processes
or other machines sharing the storage), and at the end the best trial as an `rnn-tui train` command. It never
imports torch. Each worker takes trials one at a time (a shared ticket count spreads --trials over the
workers); a trial is an ordinary engine run built by engine.session.open_session, whose per-epoch held-out
perplexity is reported to Optuna's pruner.

Faults. A trial that diverges is recorded PRUNED with the engine's reason (so the sampler learns the region is
bad); one that raises is FAIL with its reason; either way the sweep goes on. Stopping (ctrl+c, SIGTERM, SIGHUP)
stops each running trial at its next batch, records it FAIL ("stopped") and queues its settings again, so the
same command continues the study with it. A worker process that dies is noticed by the monitor, which fails and
re-queues its trial at once; a worker on another machine that dies is failed by Optuna's heartbeat (a trial
whose heartbeat is older than GRACE_SECONDS is failed and retried once, RetryHeartbeatStaleTrialCallback).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shlex
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from engine.config import SETTINGS, TrainConfig, to_argv
from engine.errors import RnnTuiError, first_line
from engine.outputs import open_for_appending
from engine.space import Space, suggest

DEFAULT_STORAGE_FILE = "rnn-tui-sweeps.db"
DEFAULT_STUDY = "rnn-tui"
DEFAULT_EPOCHS = 20
DEFAULT_TRIALS = 20  # when neither --trials nor --timeout is given
PRUNERS = ("median", "halving", "none")
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 60
POLL_SECONDS = 0.5
HOST = socket.gethostname()
# Settings that change what a trial measures: a study keeps them fixed, so its trials stay comparable. Where
# the corpus lies, how often samples print and the device do not change the objective (Setting.compared).
NOT_COMPARED = tuple(s.name for s in SETTINGS if not s.compared)
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


def open_storage(url: str) -> Any:
    """An Optuna RDBStorage on url with heartbeats; a malformed or unreachable URL is a one-line SweepError."""
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
        if database and database != ":memory:" and not Path(database).expanduser().parent.is_dir():
            raise SweepError(f"storage {url}: the folder {Path(database).parent} does not exist")
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
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
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
            raise SweepError(f"cannot open storage {shown_url(url)}: {first}") from None
    raise SweepError(f"cannot open storage {shown_url(url)}: its tables could not be created")


def quiet_optuna() -> None:
    """Optuna logs every trial and warns that heartbeats are experimental: the monitor prints its own lines."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # its per-trial warnings would repeat our lines with tracebacks
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


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


def open_study(spec: SweepSpec, storage: Any, worker: int = 0) -> Any:
    """Create the study, or load it when it exists; a study made with other fixed settings is refused."""
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
    wanted = json.loads(json.dumps(compared_settings(spec.fixed)))
    existing = study.user_attrs.get("fixed")
    if existing is None:
        study.set_user_attr("fixed", wanted)
        study.set_user_attr("space", spec.space.describe())
        study.set_user_attr("objective", OBJECTIVE_HELDOUT)
    elif existing != wanted:
        differ = sorted(set(existing) ^ set(wanted) | {k for k in existing if k in wanted and existing[k] != wanted[k]})
        shown = ", ".join(
            f"{k.replace('_', '-')} {existing.get(k, 'default')}→{wanted.get(k, 'default')}" for k in differ
        )
        raise SweepError(
            f"study {spec.study!r} was run with other fixed settings ({shown}); its trials would not compare: "
            "give another --study name, or the same flags"
        )
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


def trial_command_overrides(spec: SweepSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    return {**spec.fixed, **params}


def run_trial(trial: Any, spec: SweepSpec, current: TrialRun, stop: StopSignals) -> float:
    """The objective: one engine run with the trial's settings; its best held-out perplexity."""
    import optuna

    from engine import events
    from engine.session import open_session

    params = suggest(trial, spec.space, spec.fixed)
    current.number, current.params, current.trainer = trial.number, params, None
    overrides = trial_command_overrides(spec, params)
    trial.set_user_attr("host", HOST)
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("config", json.loads(json.dumps(overrides)))
    history: list[dict[str, Any]] = []
    failure: list[str] = []
    pruned: list[str] = []
    started = time.perf_counter()
    metrics: IO[str] | None = None

    def listener(event: events.Event) -> None:
        if isinstance(event, events.EpochEnd):
            heldout = event.val_perplexity is not None
            value = event.val_perplexity if event.val_perplexity is not None else event.perplexity
            value = value if math.isfinite(value) else float("inf")
            record = event.record()
            history.append(record)
            trial.set_user_attr("history", history)
            trial.set_user_attr("objective", OBJECTIVE_HELDOUT if heldout else OBJECTIVE_FALLBACK)
            trial.set_user_attr("best", min(min(h["val_perplexity"] or h["perplexity"] for h in history), 1e300))
            trial.set_user_attr("seconds", time.perf_counter() - started)
            if metrics is not None:
                metrics.write(json.dumps({"trial": trial.number, **record}) + "\n")
                metrics.flush()
            trial.report(value, event.epoch)
            if trial.should_prune():
                pruned.append(f"pruned at epoch {event.epoch}: {value:,.1f} is worse than earlier trials at that epoch")
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
        if spec.save and history:
            save_trial(session.trainer, trial, spec.save)
    except RnnTuiError as exc:
        failure.append(str(exc))
    except Exception as exc:  # a bug or an environment fault: recorded, the sweep goes on
        failure.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    finally:
        current.trainer = None
        if metrics is not None:
            metrics.close()
    trial.set_user_attr("seconds", time.perf_counter() - started)
    if stop.requested:
        trial.set_user_attr("reason", "stopped by the user; queued again")
        raise SweepStopped()
    if failure:
        reason = failure[0]
        trial.set_user_attr("reason", reason)
        if "diverged" in reason:  # pruned, not failed: the sampler then learns to avoid the region
            raise optuna.TrialPruned(reason)
        raise TrialFailed(reason)
    if pruned:
        trial.set_user_attr("reason", pruned[0])
        raise optuna.TrialPruned(pruned[0])
    if not history:
        trial.set_user_attr("reason", "no epoch finished")
        raise TrialFailed("no epoch finished")
    return min(h["val_perplexity"] if h["val_perplexity"] is not None else h["perplexity"] for h in history)


def save_trial(trainer: Any, trial: Any, save: str) -> None:
    """Save a trial's weights as NAME.trial-N.ckpt. A failed write (a full disk) costs the checkpoint, not the
    trial's result: it is recorded (user attribute save_error) and said, and the sweep goes on."""
    path = trial_checkpoint(save, trial.number)
    try:
        trainer.save(str(path))
    except RnnTuiError as exc:
        trial.set_user_attr("save_error", str(exc))
        print(f"rnn-tui sweep: trial {trial.number}: checkpoint not saved: {exc}", file=sys.stderr, flush=True)


def trial_checkpoint(save: str, number: int) -> Path:
    path = Path(save).expanduser()
    return path.with_name(f"{path.stem}.trial-{number}{path.suffix or '.ckpt'}")


def take_ticket(tickets: Any) -> bool:
    """One trial's worth of the --trials budget (None: unlimited, the timeout ends the sweep)."""
    if tickets is None:
        return True
    with tickets.get_lock():
        if tickets.value <= 0:
            return False
        tickets.value -= 1
        return True


def worker_main(spec: SweepSpec, worker: int, tickets: Any, deadline: float | None) -> None:
    """A worker process: run trials until the budget, the deadline or a stop request ends it."""
    os.environ["OMP_NUM_THREADS"] = str(spec.threads)  # before torch loads: no oversubscribing OpenMP team
    current = TrialRun()

    def on_stop(signum: int) -> None:
        trainer = current.trainer
        if trainer is not None:
            trainer.stop()

    with StopSignals(on_stop) as stop:
        watch_parent(stop)
        try:
            storage = open_storage(spec.storage)
            study = open_study(spec, storage, worker)
        except RnnTuiError as exc:
            print(f"rnn-tui sweep: worker {worker}: {exc}", file=sys.stderr, flush=True)
            sys.exit(2)
        while not stop.requested and (deadline is None or time.time() < deadline) and take_ticket(tickets):
            try:
                study.optimize(lambda trial: run_trial(trial, spec, current, stop), n_trials=1, catch=(TrialFailed,))
            except SweepStopped:
                requeue(study, current.number, current.params)
                break
            except Exception as exc:  # the storage went away: this worker cannot go on
                message = str(exc).strip().splitlines()
                print(
                    f"rnn-tui sweep: worker {worker} stops: {message[0] if message else type(exc).__name__}",
                    file=sys.stderr,
                    flush=True,
                )
                sys.exit(1)


def watch_parent(stop: StopSignals) -> None:
    """Stop as if signalled when the monitor process is gone (killed): a worker never trains on orphaned."""
    parent = os.getppid()

    def watch() -> None:
        while not stop.requested:
            if os.getppid() != parent:
                stop._handle(signal.SIGTERM, None)
                return
            time.sleep(1)

    threading.Thread(target=watch, name="rnn-tui-sweep-parent-watch", daemon=True).start()


def requeue(study: Any, number: int, params: Mapping[str, Any]) -> None:
    """Queue a stopped trial's settings again: the next run of the same command trains them first."""
    if number >= 0 and params:
        study.enqueue_trial(dict(params), user_attrs={"requeued_from": number})


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


def train_command(fixed: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """The `rnn-tui train` command line that trains a trial's settings on its own."""
    words = ["rnn-tui", "train", "--headless", *to_argv({**fixed, **params}, always=(*params, "epochs"))]
    return shlex.join(words)


def finished_states() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def fail_trials_of(study: Any, pid: int, reason: str) -> list[int]:
    """Fail (and re-queue) the running trials of a dead worker process of this machine."""
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("pid") == pid and trial.user_attrs.get("host") == HOST:
            storage = study._storage
            try:
                storage.set_trial_user_attr(trial._trial_id, "reason", reason)
                if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                    failed.append(trial.number)
                    requeue(study, trial.number, trial.params)
            except Exception:  # finished meanwhile, or failed by another process's heartbeat check
                pass
    return failed


def check_spec(spec: SweepSpec) -> None:
    if spec.jobs < 1:
        raise SweepError(f"--jobs must be a whole number ≥ 1, got {spec.jobs}")
    if spec.trials is not None and spec.trials < 1:
        raise SweepError(f"--trials must be a whole number ≥ 1, got {spec.trials}")
    if spec.timeout is not None and not (math.isfinite(spec.timeout) and spec.timeout > 0):
        raise SweepError(f"--timeout must be a number of seconds > 0, got {spec.timeout:g}")
    if not spec.study.strip():
        raise SweepError("--study needs a name")
    TrainConfig(**{k: v for k, v in spec.fixed.items()})  # a bad fixed setting fails here, not in every trial


def run_sweep(spec: SweepSpec, out: Callable[[str], None] | None = None) -> int:
    """Run the sweep to its end; its exit code: 0, 1 when a worker was lost, 128 + N when stopped by signal N."""
    say = out or (lambda line: print(line, flush=True))
    check_spec(spec)
    storage = open_storage(spec.storage)
    study = open_study(spec, storage)
    earlier = study.get_trials(deepcopy=False)
    seen = {t.number for t in earlier if t.state in finished_states()}
    best = best_trial(study)
    say(
        f"study {spec.study!r} in {shown_url(spec.storage)}: "
        + (f"{len(earlier)} earlier trials, continuing" if earlier else "new")
        + (f", best so far {best.value:,.1f} (trial {best.number})" if best is not None else "")
    )
    say(f"searching {spec.space.describe()}")
    budget = f"{spec.trials} trials" if spec.trials else "no trial limit"
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
    workers = [
        context.Process(target=worker_main, args=(spec, index, tickets, deadline), name=f"rnn-tui-sweep-{index}")
        for index in range(spec.jobs)
    ]
    stopping = False
    fallback_said = False

    def on_stop(signum: int) -> None:
        nonlocal stopping
        if stopping and signum == signal.SIGINT:  # a second ctrl+c: leave now (the monitor fails the trials)
            for process in workers:
                if process.is_alive() and process.pid is not None:
                    os.kill(process.pid, signal.SIGKILL)
            return
        stopping = True
        for process in workers:  # a terminal's ctrl+c reaches them already; SIGTERM sent to us does not
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    dead: set[int] = set()
    worker_failed = False
    with StopSignals(on_stop) as stop:
        if stop.requested:
            return stopped_code(stop)
        for process in workers:
            process.start()
        if stopping:  # a signal that came while they started
            on_stop(signal.SIGTERM)
        while True:
            alive = [p for p in workers if p.is_alive()]
            for process in workers:
                if not process.is_alive() and process.pid not in dead and process.pid is not None:
                    dead.add(process.pid)
                    if process.exitcode not in (0, None):
                        worker_failed = worker_failed or not stopping
                        for number in fail_trials_of(
                            study, process.pid, f"its worker process ended ({process.exitcode})"
                        ):
                            say(
                                f"trial {number:>3}  failed: its worker process ended ({process.exitcode}); "
                                "queued again"
                            )
            try:
                trials = study.get_trials(deepcopy=False, states=finished_states())
            except Exception as exc:  # the database went away for a moment: try again at the next poll
                say(f"cannot read the study: {first_line(exc)}")
                trials = []
            for trial in sorted(trials, key=lambda t: t.number):
                if trial.number in seen:
                    continue
                seen.add(trial.number)
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
            if not alive:
                break
            time.sleep(POLL_SECONDS)
    for process in workers:
        process.join()
    summarize(study, spec, say)
    if stop.requested or stopping:
        say(
            "stopped: running trials were recorded failed and queued again; the same command continues "
            f"study {spec.study!r}"
        )
        return stopped_code(stop)
    return 1 if worker_failed else 0


def stopped_code(stop: StopSignals) -> int:
    """128 + the signal's number, as the engine's headless runs exit (130 ctrl+c, 143 SIGTERM, 129 SIGHUP)."""
    from engine.signals import exit_code

    return exit_code(stop.first if stop.first is not None else signal.SIGINT)


def summarize(study: Any, spec: SweepSpec, say: Callable[[str], None]) -> None:
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(trial_state(t) == state for t in trials) for state in STATES}
    say("study " + repr(spec.study) + ": " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    best = best_trial(study)
    if best is None:
        say("no trial completed yet: nothing to recommend")
        return
    label = "TRAINING perplexity (fallback)" if uses_fallback(best) else "held-out perplexity"
    say(f"best: trial {best.number}, {label} {best.value:,.1f}, {format_params(best.params)}")
    say(f"  {train_command(spec.fixed, best.params)}")


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


def read_trials(storage_url: str, study_name: str) -> list[TrialRow]:
    """The trials of a study, in order; a missing study or unreachable storage is a one-line SweepError."""
    import optuna

    storage = open_storage(storage_url)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        there = f"; studies there: {', '.join(names)}" if names else "; it has no studies yet"
        raise SweepError(f"no study {study_name!r} in {shown_url(storage_url)}{there}") from None
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
            )
        )
    return rows


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
