"""`rnn-tui sweep`: an Optuna study over training settings, ranked by held-out perplexity; this module is its
monitor, the command's own process.

It opens (or creates) the study, checks its identity (engine.sweep.study), starts --jobs worker processes
(engine.sweep.worker), prints (through its caller's callbacks: the engine prints nothing) a line for every trial
that starts here and every trial that finishes in the study (from its workers, other processes or other machines
sharing the storage), a live progress line, and at the end the best trial as an exact `rnn-tui train` command.
It never imports torch.

Faults. Every storage call waits out an outage (engine.sweep.liveness.Patience, --storage-patience). A trial that is
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
from engine.sweep.liveness import (
    SAY_EVERY,
    Patience,
    Reaper,
    StorageLost,
    fail_trials_of,
    heartbeat_interval,
    storage_reason,
)
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
from engine.sweep.study import load_study_of, open_storage, open_study, shown_url, study_identity
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
    from optuna.trial import FrozenTrial

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
        return SweepMonitor(spec, say, progress or (lambda line: None)).run()
    except StorageLost as exc:
        say(f"rnn-tui sweep: {exc}; running trials are failed by the next sweep process or `rnn-tui sweep --reap`")
        return EXIT_STORAGE
    except RnnTuiError:
        raise  # bad input or a study that does not match: the command line says it in one line, exit 2
    except Exception as exc:  # a fault not foreseen: one line, not a traceback, and a failing exit code
        say(f"rnn-tui sweep: stopped by an unexpected error: {type(exc).__name__}: {storage_reason(exc)}")
        return EXIT_LOST


class OutageLines:
    """The lines of database outages, once per outage and in order, whichever process (the monitor or a worker)
    met it first. A worker's line reaches the monitor late (the monitor drains them between its own storage calls):
    each carries the time it was said, and one about an outage already over is dropped."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.down = False
        self.back_at = -math.inf  # when the last outage was said to be over (time.time())
        self.said_at = -math.inf  # when the outage now on was last said

    def tell(self, kind: str, line: str, at: float | None = None) -> None:
        at = time.time() if at is None else at
        if kind == "outage":
            if self.down and at - self.said_at < SAY_EVERY:
                return  # the same outage, said lately (by this process or another)
            if not self.down and at <= self.back_at:
                return  # an outage already said and over: a worker's line that came late
            self.down, self.said_at = True, at
        elif kind == "back":
            if not self.down:
                return
            self.down, self.back_at = False, at
        self.say(line)


class SweepMonitor:
    """One `rnn-tui sweep` command's process, in named steps: open the study, start the workers, then until they
    are done: drain their messages, replace the ones that died, reap lost machines' trials, report finished trials;
    then summarize. Every storage call goes through patience (an outage is waited out)."""

    def __init__(self, spec: SweepSpec, say: Callable[[str], None], progress: Callable[[str], None]) -> None:
        check_spec(spec)
        self.spec = replace(spec, identity=study_identity(spec.fixed, spec.space))
        self.say, self.progress = say, progress
        self.outages = OutageLines(say)
        self.patience = Patience(spec.storage_patience, self.notify)
        self.deadline = time.time() + spec.timeout if spec.timeout else None
        self.context = multiprocessing.get_context("spawn")  # no forked torch or database connections
        self.tickets = self.context.Value("i", spec.trials) if spec.trials is not None else None
        self.messages = self.context.Queue()
        self.workers: list[BaseProcess | _Ended] = []
        self.started_pids: set[int] = set()
        self.asked: dict[int, set[int]] = {}  # worker pid → the trials it asked for
        self.done_here = 0  # trials of this command's workers that ran to an end
        self.stopping = False
        self.fallback_said = False
        self.replaced = 0
        self.outcome = EXIT_OK
        self.ending = ""
        self.live = EpochProgress(self.spec)
        self.seen: set[int] = set()
        self.best: FrozenTrial | None = None
        self.last_reap = time.monotonic()
        # The shared helper calls first_signal, then on_signal for each later one (not its Interrupted): the
        # monitor must stay to record its trials as lost.
        self.stop = StopOnSignals(self.first_signal, again=self.on_signal)

    def notify(self, kind: str, text: str, at: float | None = None) -> None:
        if kind in ("outage", "back"):
            self.outages.tell(kind, text, at)
        else:
            self.say(text)

    # ----- the steps -----

    def run(self) -> int:
        self.open_study()
        try:
            with self.stop:
                if self.stop.requested:
                    return stopped_code(self.stop)
                self.start_workers()
                while True:
                    self.drain()
                    # Whether all had ended before the checks below: one ending after is handled at the next poll.
                    ended = not any(p.is_alive() for p in self.workers)
                    self.replace_ended_workers()
                    self.reap_lost_trials()
                    self.report_finished_trials()
                    if ended and not any(p.is_alive() for p in self.workers):
                        break
                    time.sleep(POLL_SECONDS)
            for process in self.workers:
                process.join()
        except Exception:
            # The monitor gives up (the database stayed away, or a fault not foreseen): its workers are stopped
            # (killed if they linger); trials left running are failed by a sweep process or --reap after their grace.
            self.signal_workers(signal.SIGTERM)
            for process in self.workers:
                process.join(timeout=10)
            self.signal_workers(signal.SIGKILL)
            raise
        self.drain()
        summarize(self.study, self.spec, self.say, self.patience)
        return self.ending_code()

    def open_study(self) -> None:
        spec, patience = self.spec, self.patience
        storage = open_storage(spec.storage)
        self.study = patience.call(open_study, spec, storage, check=True)
        self.reaper = Reaper(self.study, spec.grace, patience)
        earlier = patience.call(self.study.get_trials, deepcopy=False)
        self.seen = {t.number for t in earlier if t.state in finished_states()}
        self.best = best_trial(self.study)
        best = self.best
        self.say(
            f"study {spec.study!r} in {shown_url(spec.storage)}: "
            + (f"{len(earlier)} earlier trials, continuing" if earlier else "new")
            + (f", best so far {best.value:,.1f} (trial {best.number})" if best is not None else "")
        )
        self.say(f"searching {spec.space.describe()}")
        budget = f"{spec.trials} trials by this command" if spec.trials else "no trial limit"
        if spec.timeout:
            budget += f", {spec.timeout:g} s"
        self.say(
            f"{budget}, {spec.fixed['epochs']} epochs each, {spec.jobs} worker process{'es' * (spec.jobs > 1)} × "
            f"{spec.threads} torch thread{'s' * (spec.threads > 1)}, pruner {spec.pruner}; objective: best held-out "
            "perplexity (minimised)"
        )

    def start_worker(self, index: int) -> BaseProcess:
        process = self.context.Process(
            target=worker_main,
            args=(self.spec, index, self.tickets, self.deadline, self.messages),
            name=f"rnn-tui-sweep-{index}",
        )
        process.start()
        if process.pid is not None:
            self.started_pids.add(process.pid)
        return process

    def start_workers(self) -> None:
        for index in range(self.spec.jobs):
            self.workers.append(self.start_worker(index))
        if self.stopping:  # a signal that came while they started
            self.on_signal(self.stop.received if self.stop.received is not None else signal.SIGTERM)

    def drain(self) -> None:
        """The workers' messages so far: epochs for the live line, the trials they asked for, lines to print."""
        while True:
            try:
                kind, worker, text, at = self.messages.get_nowait()
            except (queue.Empty, EOFError, OSError):
                return
            if kind == "epoch":
                self.progress(self.live.update(worker, text))
            elif kind == "asked":
                pid, number = json.loads(text)
                self.asked.setdefault(int(pid), set()).add(int(number))
            else:
                self.notify(kind, text, at)

    def replace_ended_workers(self) -> None:
        """A worker that died: its trials failed and queued again, and a new worker in its place while the budget
        lasts (up to 3 × --jobs times)."""
        for slot, process in enumerate(self.workers):
            if process.is_alive() or process.pid is None or process.exitcode in (None, 0):
                continue
            code = process.exitcode
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            why = f"its worker process ended ({how}); queued again"
            self.drain()  # what it said last (the trial it asked for)
            lost = self.patience.call(fail_trials_of, self.study, process.pid, why, self.asked.pop(process.pid, ()))
            give_back_ticket(self.tickets, len(lost))
            for number in lost:
                self.say(f"trial {number:>3}  failed: its worker process ended ({how}); queued again")
            self.workers[slot] = _Ended(code)
            if self.stopping:
                continue
            if code == EXIT_STORAGE:
                self.ending, self.outcome = "the database stayed unreachable: this command stops", EXIT_STORAGE
                self.stopping = True
                self.signal_workers(signal.SIGTERM)
            elif code == EXIT_USAGE:
                self.ending, self.outcome = "a worker could not open the study", EXIT_USAGE
            elif budget_left(self.tickets, self.deadline) and self.replaced < 3 * self.spec.jobs:
                self.replaced += 1
                self.say(f"worker {slot} ended ({how}): a new worker process takes its place")
                self.workers[slot] = self.start_worker(slot)
            elif budget_left(self.tickets, self.deadline):
                self.outcome = EXIT_LOST
                self.ending = f"{self.replaced} worker processes replaced already: giving up"
            # else: nothing left for it to run (another worker took its trial's ticket): not a loss

    def reap_lost_trials(self) -> None:
        """Every heartbeat interval: fail the trials of machines silent past their own grace (Reaper)."""
        if time.monotonic() - self.last_reap < heartbeat_interval(self.spec.grace):
            return
        self.last_reap = time.monotonic()
        for number, reason in self.patience.call(self.reaper.reap):
            self.say(f"trial {number:>3}  failed: {reason}")

    def report_finished_trials(self) -> None:
        """A line for each trial newly finished in the study (from any process or machine), the best so far."""
        trials = self.patience.call(self.study.get_trials, deepcopy=False, states=finished_states())
        for trial in sorted(trials, key=lambda t: t.number):
            if trial.number in self.seen:
                continue
            self.seen.add(trial.number)
            self.live.finished(trial.number, trial_seconds(trial))
            best = self.best
            if (
                trial.state.name == "COMPLETE"
                and trial.value is not None
                and (best is None or best.value is None or trial.value < best.value)
            ):
                self.best = best = trial
            if uses_fallback(trial) and not self.fallback_said:
                self.fallback_said = True
                self.say(f"* {OBJECTIVE_FALLBACK}: ranked by memorisation, not generalisation")
            self.say(progress_line(trial, best.value if best is not None else None))
            mine = trial.user_attrs.get("host") == HOST and trial.user_attrs.get("pid") in self.started_pids
            if mine and not str(trial.user_attrs.get("reason", "")).endswith("queued again"):
                self.done_here += 1  # counted as --trials counts: a lost trial is run again
                if self.spec.trials and self.live.sweep_eta(self.spec.trials - self.done_here):
                    self.progress(self.live.line())

    def ending_code(self) -> int:
        if self.ending:
            self.say(self.ending)
        if self.stop.requested or (self.stopping and self.outcome == EXIT_OK):
            self.say(
                "stopped: running trials were recorded failed and queued again; the same command continues "
                f"study {self.spec.study!r}"
            )
            return stopped_code(self.stop)
        return self.outcome

    # ----- signals -----

    def signal_workers(self, sig: int) -> None:
        for process in self.workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, sig)

    def on_signal(self, signum: int) -> None:
        if self.stopping and signum == signal.SIGINT:  # a second ctrl+c: leave now (the monitor fails the trials)
            self.signal_workers(signal.SIGKILL)
            return
        self.stopping = True
        # The signal itself: a trial stopped by SIGHUP is recorded "stopped by SIGHUP" (a terminal's ctrl+c reaches
        # them already; SIGTERM or SIGHUP sent to this process alone does not).
        self.signal_workers(signum)

    def first_signal(self) -> None:
        self.on_signal(self.stop.received if self.stop.received is not None else signal.SIGTERM)


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

    study = load_study_of(storage_url, study_name, write=True)
    reaper = Reaper(study, grace)
    lost = reaper.reap()
    waiting = reaper.waiting()
    if waiting:
        # A machine back from an outage beats again within this: only those still silent then are failed.
        say(
            f"{len(reaper.suspects)} running trial{'s' * (len(reaper.suspects) != 1)} silent past their grace: "
            f"checking again in {waiting:.0f} s"
        )
    while reaper.suspects:
        time.sleep(min(1.0, max(0.1, reaper.waiting())))
        lost += reaper.reap()
    for number, reason in lost:
        say(f"trial {number:>3}  failed: {reason}")
    running = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))
    say(
        f"study {study_name!r}: {len(lost)} lost trial{'s' * (len(lost) != 1)} failed and queued again; "
        f"{running} running with a live heartbeat"
    )
    return EXIT_OK
