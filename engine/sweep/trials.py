"""A study's trials read back: their state, best figure, ready `rnn-tui train` command, the monitor's progress
lines, and the app's Sweep screen (TrialRow, read_trials, param_importances, trials_csv)."""

from __future__ import annotations

import math
import shlex
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import to_argv
from engine.errors import first_line
from engine.sweep.spec import HOST, OBJECTIVE_FALLBACK, SweepError
from engine.sweep.study import load_study_of

if TYPE_CHECKING:  # optuna is imported where it is used: the app loads it only when a sweep is read
    import optuna
    from optuna.trial import FrozenTrial, TrialState


def trial_state(trial: FrozenTrial) -> str:
    name = trial.state.name.lower()
    return {"fail": "failed"}.get(name, name)


def trial_best(trial: FrozenTrial) -> float | None:
    """The trial's best held-out (or labelled fallback) perplexity so far."""
    if trial.state.name == "COMPLETE" and trial.value is not None:
        return float(trial.value)
    best = trial.user_attrs.get("best")
    if best is not None:
        return float(best)
    values = [v for v in trial.intermediate_values.values() if v is not None and math.isfinite(v)]
    return min(values) if values else None


def uses_fallback(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get("objective") == OBJECTIVE_FALLBACK


def format_params(params: Mapping[str, Any]) -> str:
    def show(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return " ".join(f"{k}={show(v)}" for k, v in params.items())


def trial_seconds(trial: FrozenTrial) -> float | None:
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    seconds = trial.user_attrs.get("seconds")
    return float(seconds) if seconds is not None else None


def progress_line(trial: FrozenTrial, best: float | None) -> str:
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


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and t.value is not None]
    return min(complete, key=lambda t: math.inf if t.value is None else t.value) if complete else None


def best_epoch(trial: FrozenTrial) -> int | None:
    values = [(v, e) for e, v in trial.intermediate_values.items() if v is not None and math.isfinite(v)]
    return min(values)[1] if values else None


def trial_test(trial: FrozenTrial) -> tuple[float, int | None] | None:
    """(test perplexity, whose epoch's weights) of a trial that ran to its end: its last epoch's record carries it
    (engine/trainer.py). Reported for the best trial only; the ranking never reads it."""
    history = trial.user_attrs.get("history") or []
    value = history[-1].get("test_perplexity") if history else None
    return (float(value), history[-1].get("test_epoch")) if value is not None else None


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


def best_checkpoint_name(number: int) -> str:
    """Where a trial's ready command keeps its best held-out epoch's weights (--save-best)."""
    return f"trial-{number}-best.ckpt"


def trial_train_command(trial: FrozenTrial) -> str:
    """The ready command of a stored trial (older trials without a config: their params over nothing).

    It runs the trial again as it ran: its own --epochs (the ones it was to train, which a cosine schedule's rate
    depends on) and --patience, not cut at its best epoch. --save-best keeps the best held-out epoch's weights and
    names that epoch and its held-out perplexity: the trial's value, digit for digit, on the same machine.
    """
    config = dict(trial.user_attrs.get("config") or {})
    command = train_command(config, trial.params, trial.user_attrs.get("threads"))
    return f"{command} --save-best {best_checkpoint_name(trial.number)}" if config else command


def finished_states() -> tuple[TrialState, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


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
    best_epoch: int | None = None  # the epoch of the best figure (the ready command and Apply best train all epochs)
    seed: int | None = None
    planned: int = 0  # the epochs the trial was to train
    command: str = ""  # its ready `rnn-tui train` command
    value: float | None = None  # the value Optuna stores (a pruned trial's: its last epoch's figure)
    started: datetime | None = None  # when it started and finished (naive local time, as Optuna stamps them)
    finished: datetime | None = None
    threads: int | None = None  # the torch threads it trained with

    @property
    def form_settings(self) -> dict[str, Any]:
        """What Apply best writes into the form: the trial's settings and seed, and its own epochs (not cut at its best
        epoch: a cosine schedule's rate depends on them). The run then shows the trial's best held-out epoch."""
        settings = {**self.config, **self.params}
        if self.seed is not None:
            settings["seed"] = self.seed
        return settings


def best_row(rows: Sequence[TrialRow]) -> TrialRow | None:
    """The complete trial with the lowest best figure (held-out; the test text is in no row's `best`): what the
    app's Apply best takes, as the sweep's summary ranks."""
    complete = [r for r in rows if r.state == "complete" and r.best is not None]
    return min(complete, key=lambda r: r.best if r.best is not None else math.inf) if complete else None


def trial_row(trial: FrozenTrial) -> TrialRow:
    history = tuple(trial.user_attrs.get("history", ()))
    threads = trial.user_attrs.get("threads")
    return TrialRow(
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
        value=None if trial.value is None else float(trial.value),
        started=trial.datetime_start,
        finished=trial.datetime_complete,
        threads=int(threads) if isinstance(threads, int) else None,
    )


class StudyReader:
    """A viewer's reads of one storage through one database engine (the app's F12 reads every second: a new engine
    each time would leave a pool of idle connections behind each). close() lets the connections go."""

    def __init__(self, storage_url: str) -> None:
        self.url = storage_url
        self._storage: optuna.storages.RDBStorage | None = None

    @property
    def storage(self) -> optuna.storages.RDBStorage:
        if self._storage is None:
            from engine.sweep.study import open_storage

            self._storage = open_storage(self.url, write=False)
        return self._storage

    def study(self, study_name: str) -> optuna.Study:
        return load_study_of(self.url, study_name, storage=self.storage)

    def trials(self, study_name: str) -> list[TrialRow]:
        """The trials of a study, in order; a missing study or unreachable storage is a one-line SweepError."""
        return [trial_row(trial) for trial in self.study(study_name).get_trials(deepcopy=False)]

    def importances(self, study_name: str) -> dict[str, float]:
        """Each searched setting's share of the objective's variance over the complete trials (Optuna's fANOVA);
        a one-line SweepError while there are too few trials to tell."""
        import optuna

        study = self.study(study_name)
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(complete) < 2:
            raise SweepError(f"importances need 2 complete trials, the study has {len(complete)}")
        try:
            with warnings.catch_warnings():  # its notes on stderr would scribble over the app's screen
                warnings.simplefilter("ignore")
                return dict(optuna.importance.get_param_importances(study))
        except (RuntimeError, ValueError) as exc:  # one value for every setting, a parameter absent from some trials
            raise SweepError(f"importances cannot be computed yet: {first_line(exc)}") from None

    def close(self) -> None:
        if self._storage is not None:
            self._storage.engine.dispose()
            self._storage = None


def read_trials(storage_url: str, study_name: str) -> list[TrialRow]:
    """The trials of a study, in order, read once (a viewer keeps a StudyReader)."""
    reader = StudyReader(storage_url)
    try:
        return reader.trials(study_name)
    finally:
        reader.close()


def param_importances(storage_url: str, study_name: str) -> dict[str, float]:
    """StudyReader.importances, read once."""
    reader = StudyReader(storage_url)
    try:
        return reader.importances(study_name)
    finally:
        reader.close()


CSV_COLUMNS = ("trial", "state", "value", "best_ppl", "best_epoch", "epochs", "seconds", "seed", "machine",
               "started", "finished", "threads", "reason")  # fmt: skip


def trials_csv(rows: list[TrialRow], path: str | Path) -> Path:
    """Write the trials as CSV, one row a trial; the file written.

    Numbers as stored (repr: every digit): value is what Optuna stores (a pruned trial's is its last epoch's
    figure), best_ppl the best over its epochs; started and finished in ISO 8601; each searched setting a column;
    history the per-epoch records as JSON; command the ready `rnn-tui train` line.
    """
    import csv
    import json

    def number(value: float | None) -> str:
        return "" if value is None else repr(float(value))

    def when(moment: datetime | None) -> str:
        return "" if moment is None else moment.isoformat()

    names = sorted({name for row in rows for name in row.params})
    target = Path(path).expanduser()
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CSV_COLUMNS, *names, "history", "command"])
        for row in rows:
            writer.writerow(
                [row.number, row.state, number(row.value), number(row.best), row.best_epoch or "", row.epochs,
                 number(row.seconds), "" if row.seed is None else row.seed, row.host, when(row.started),
                 when(row.finished), row.threads or "", row.reason,
                 *(repr(v) if isinstance(v, float) else v for v in (row.params.get(n, "") for n in names)),
                 json.dumps(list(row.history)), row.command]
            )  # fmt: skip
    return target
