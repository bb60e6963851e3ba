"""Runs compared: every finished or stopped run, and every loaded checkpoint's history, side by side.

A Run is a config plus its per-epoch figures (EpochEnd). A RunBook keeps them in the order they came,
labels each by the settings that differ between the runs it holds ("cell=gru clip=off"), gives the
curves to overlay, and exports them as CSV.

CSV format (wide, one column per curve, so a spreadsheet plots it at once). Each run's perplexity column is
followed by its held-out and fresh-state columns when it has those figures (held-out evaluation was on):

    epoch,cell=rnn,cell=rnn held-out,cell=rnn fresh,cell=gru,cell=gru held-out,cell=gru fresh
    1,1023.5,1010.1,1030.2,1019.2,1001.7,1025.0
    2,412.7,398.3,420.9,398.0,380.2,401.3

A run with no figure for an epoch leaves that cell empty. Labels are quoted by the csv module when
they need it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.config import SETTINGS, SETTINGS_BY_NAME, TrainConfig
from engine.errors import ConfigError
from engine.events import EpochEnd
from engine.outputs import check_output_target, write_atomically

METRICS = ("perplexity", "val_perplexity", "fresh_perplexity", "seconds", "chars_per_second")
# The figures that go with a metric, exported beside it: (metric, what the column's label adds).
COMPANIONS = {"perplexity": (("val_perplexity", "held-out"), ("fresh_perplexity", "fresh"))}
# Settings that tell runs apart, in the order labels name them (each setting's declared runs role). Report-only
# settings (pred_len, prefixes, temperature...) do not change a curve: they never label a run.
LABEL_SETTINGS = tuple(s.name for s in SETTINGS if s.runs == "label")
# Named only when the settings above leave two runs with the same label. The corpus is among them: the
# same file can be named in several ways (unset = the default path, or a path given explicitly).
TIEBREAK_SETTINGS = tuple(s.name for s in SETTINGS if s.runs == "tiebreak")
# Settings that can change mid-run: a label shows every value a run took, from its epochs' figures.
PER_EPOCH_SETTINGS = tuple(s.name for s in SETTINGS if s.per_epoch)


@dataclass(frozen=True)
class Run:
    config: TrainConfig
    history: tuple[EpochEnd, ...]
    origin: str  # "run 2", or "checkpoint book.ckpt": what it is when nothing else tells runs apart
    stopped: bool = False  # stopped before its configured epochs

    def metric(self, name: str) -> list[float | None]:
        """The metric per epoch; None where the run has no such figure (held-out evaluation off)."""
        check_metric(name)
        return [getattr(epoch, name) for epoch in self.history]

    def has(self, name: str) -> bool:
        return any(value is not None for value in self.metric(name))

    @property
    def epochs(self) -> list[int]:
        return [epoch.epoch for epoch in self.history]

    def setting(self, name: str) -> str:
        """The setting as a label shows it. lr, clip (PER_EPOCH_SETTINGS) can change mid-run: all values taken."""
        if name in PER_EPOCH_SETTINGS and self.history:
            taken = list(dict.fromkeys(getattr(epoch, name) for epoch in self.history))
            return "→".join(format_setting(name, value) for value in taken)
        return format_setting(name, getattr(self.config, name))


@dataclass(frozen=True)
class Series:
    """One curve of an overlay."""

    label: str
    epochs: tuple[int, ...]
    values: tuple[float | None, ...]  # None: no figure for that epoch


def check_metric(name: str) -> None:
    if name not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}; got {name!r}")


def csv_cell(value: float | None) -> str:
    return "" if value is None else repr(value)  # repr round-trips a float exactly


def format_setting(name: str, value: object) -> str:
    if name == "clip" and value == 0:
        return "off"
    if name == "corpus":
        return Path(str(value)).name if value else "default"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def label_runs(runs: Sequence[Run]) -> list[str]:
    """A label per run naming the settings whose values differ among the runs, e.g. "cell=gru lr=0.01".

    When those leave runs with the same label, seed, epochs, corpus and device are added; runs whose labels
    still clash get their origin added ("run 3"), and when nothing differs the origin is the label.
    """
    if not runs:
        return []

    def differing(names: Iterable[str]) -> list[str]:
        return [name for name in names if len({run.setting(name) for run in runs}) > 1]

    names = differing(LABEL_SETTINGS)
    labels = [" ".join(f"{name}={run.setting(name)}" for name in names) for run in runs]
    if len(set(labels)) < len(labels):
        names += differing(TIEBREAK_SETTINGS)
        labels = [" ".join(f"{name}={run.setting(name)}" for name in names) for run in runs]
    clashing = {label for label in labels if labels.count(label) > 1}
    return [
        (f"{label} ({run.origin})" if label in clashing else label) if label else run.origin
        for label, run in zip(labels, runs, strict=True)
    ]


def is_continuation(earlier: Run, later: Run) -> bool:
    """later carries on earlier (a resumed checkpoint): its history starts with all of earlier's."""
    if not earlier.history or len(later.history) <= len(earlier.history):
        return False
    # A resumed run may change only where it trains and for how long (engine.session.RESUMABLE_CHANGES).
    changed = earlier.config.structural_differences(later.config)
    same_model = all(SETTINGS_BY_NAME[name].resumable for name in changed)
    return same_model and later.history[: len(earlier.history)] == earlier.history


class RunBook:
    """The runs seen since the app started, in order; a run that continues another replaces it."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def __len__(self) -> int:
        return len(self.runs)

    def add(self, run: Run) -> Run | None:
        """Keep run (if it has at least one epoch). Returns the run it replaced, if it continues one."""
        if not run.history:
            return None
        for index, earlier in enumerate(self.runs):
            if is_continuation(earlier, run):
                self.runs[index] = run
                return earlier
            if earlier.history == run.history and earlier.config == run.config:
                return None  # the same run twice (a checkpoint loaded again): keep one
        self.runs.append(run)
        return None

    def add_history(
        self, config: TrainConfig, history: Iterable[EpochEnd], origin: str, stopped: bool = False
    ) -> Run | None:
        return self.add(Run(config, tuple(history), origin, stopped))

    def remove(self, index: int) -> None:
        del self.runs[index]

    def labels(self) -> list[str]:
        return label_runs(self.runs)

    def overlay(self, metric: str = "perplexity", chosen: Sequence[int] | None = None) -> list[Series]:
        """The curves to draw on one plot: each chosen run's metric per epoch, labelled. None chooses all."""
        check_metric(metric)
        indices = range(len(self.runs)) if chosen is None else chosen
        picked = [self.runs[i] for i in indices]
        return [
            Series(label, tuple(run.epochs), tuple(run.metric(metric)))
            for label, run in zip(label_runs(picked), picked, strict=True)
        ]

    def columns(self, metric: str = "perplexity", chosen: Sequence[int] | None = None) -> list[Series]:
        """The curves a CSV holds: each chosen run's metric, then its companions (COMPANIONS) that it has."""
        check_metric(metric)
        indices = list(range(len(self.runs))) if chosen is None else list(chosen)
        columns = []
        for curve, index in zip(self.overlay(metric, indices), indices, strict=True):
            columns.append(curve)
            run = self.runs[index]
            for companion, suffix in COMPANIONS.get(metric, ()):
                if run.has(companion):
                    columns.append(Series(f"{curve.label} {suffix}", curve.epochs, tuple(run.metric(companion))))
        return columns

    def to_csv(self, metric: str = "perplexity", chosen: Sequence[int] | None = None) -> str:
        """epoch,<label1>,<label1 held-out>,…: one row per epoch any run reached, empty where a curve has none."""
        series = self.columns(metric, chosen)
        epochs = sorted({epoch for curve in series for epoch in curve.epochs})
        by_epoch = [dict(zip(curve.epochs, curve.values, strict=True)) for curve in series]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["epoch", *(curve.label for curve in series)])
        for epoch in epochs:
            writer.writerow([epoch, *(csv_cell(values.get(epoch)) for values in by_epoch)])
        return buffer.getvalue()

    def export_csv(
        self, path: str | Path, metric: str = "perplexity", chosen: Sequence[int] | None = None, force: bool = False
    ) -> Path:
        """Write to_csv() to path, atomically; a bad target is a one-line OutputError (engine.outputs), and an
        existing file that is not an rnn-tui CSV a NotOursError unless force."""
        if not self.runs:
            raise ConfigError("no runs to export yet: finish or stop a run, or load a checkpoint")
        target = check_output_target(path, "csv", force=force)
        write_atomically(target, self.to_csv(metric, chosen).encode("utf-8"))
        return target
