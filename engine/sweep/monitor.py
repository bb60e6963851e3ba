"""`rnn-tui sweep`: an Optuna study over training settings, ranked by held-out perplexity; this module is its
monitor, the command's own process.

It opens (or creates) the study, checks its identity (engine.sweep.study), starts --jobs worker processes
(engine.sweep.worker), prints (through its caller's callbacks: the engine prints nothing) a line for every trial
that starts here and every trial that finishes in the study (from its workers, other processes or other machines
sharing the storage), a live progress line, and at the end the best trial as an exact `rnn-tui train` command.
It never imports torch.

Faults. Every storage call waits out an outage (engine.sweep.study.Patience, --storage-patience). A trial that is
lost (stopped by a signal, its process killed, its machine silent past --grace) is failed with the reason, its
settings queued again, and not counted against --trials; a worker process that dies is replaced while the budget
lasts. The exit codes are engine.sweep.spec's EXIT_*.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from engine.errors import RnnTuiError
from engine.signals import StopOnSignals
from engine.sweep.spec import (
    EXIT_LOST,
    EXIT_OK,
    EXIT_STORAGE,
    EXIT_USAGE,
    HOST,
    OBJECTIVE_FALLBACK,
    STATES,
    SweepSpec,
    check_spec,
)
from engine.sweep.study import (
    SAY_EVERY,
    Patience,
    StorageLost,
    fail_trials_of,
    heartbeat_interval,
    load_study_of,
    open_storage,
    open_study,
    reap,
    shown_url,
    storage_reason,
    study_identity,
)
from engine.sweep.trials import (
    best_epoch,
    best_trial,
    finished_states,
    format_params,
    progress_line,
    trial_seconds,
    trial_state,
    trial_test,
    trial_train_command,
    uses_fallback,
)
from engine.sweep.worker import budget_left, give_back_ticket, stopped_code, worker_main

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    import optuna

POLL_SECONDS = 0.5


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

    def start_worker(index: int) -> BaseProcess:
        process = context.Process(
            target=worker_main, args=(spec, index, tickets, deadline, messages), name=f"rnn-tui-sweep-{index}"
        )
        process.start()
        if process.pid is not None:
            started_pids.add(process.pid)
        return process

    workers: list[BaseProcess | _Ended] = []
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

    def on_signal(signum: int) -> None:
        nonlocal stopping
        if stopping and signum == signal.SIGINT:  # a second ctrl+c: leave now (the monitor fails the trials)
            signal_workers(signal.SIGKILL)
            return
        stopping = True
        signal_workers(signal.SIGTERM)  # a terminal's ctrl+c reaches them already; SIGTERM sent to us does not

    # The shared helper calls first_signal, then on_signal for each later one (not its Interrupted): the monitor
    # must stay to record its trials as lost.
    def first_signal() -> None:
        on_signal(stop.received if stop.received is not None else signal.SIGTERM)

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
    stop = StopOnSignals(first_signal, again=on_signal)  # bound before its handlers are installed
    try:
        with stop:
            if stop.requested:
                return stopped_code(stop)
            for index in range(spec.jobs):
                workers.append(start_worker(index))
            if stopping:  # a signal that came while they started
                on_signal(signal.SIGTERM)
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
                        and (best is None or best.value is None or trial.value < best.value)
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


def summarize(study: optuna.Study, spec: SweepSpec, say: Callable[[str], None], patience: Patience) -> None:
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
    test = trial_test(best)
    if test is not None:  # once, for the best trial: the ranking above read held-out only
        whose = f" at epoch {test[1]}'s weights" if test[1] is not None else ""
        say(f"  test perplexity {test[0]:f} (trial {best.number}{whose}; the test text ranks nothing)")
    say(f"  {trial_train_command(best)}")


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
