from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from engine.checkpoint import load
from engine.config import TrainConfig
from engine.data.corpus import Corpus
from engine.errors import ConfigError
from engine.events import EpochEnd
from engine.outputs import NotOursError, OutputError
from engine.run_book import Run, RunBook, label_runs
from engine.trainer import Trainer


def train(config: TrainConfig, corpus: Corpus) -> Trainer:
    trainer = Trainer(config, corpus)
    trainer.run()
    return trainer


def as_run(trainer: Trainer, origin: str) -> Run:
    return Run(trainer.config, tuple(trainer.state.history), origin)


@pytest.fixture(scope="module")
def small(corpus_path: Path) -> TrainConfig:
    return TrainConfig(corpus=str(corpus_path), seed=0, hidden=32, epochs=3, pred_len=0)


@pytest.fixture(scope="module")
def three_runs(small: TrainConfig, corpus: Corpus) -> list[Trainer]:
    """RNN vs GRU, and the RNN again with clipping off (the book's, in effect): three short real runs."""
    return [
        train(small, corpus),
        train(small.with_changes(cell="gru"), corpus),
        train(small.with_changes(clip=0.0, epochs=2), corpus),
    ]


def test_overlaid_curves_are_the_runs_metrics_labelled_by_what_differs(three_runs: list[Trainer]) -> None:
    book = RunBook()
    for number, trainer in enumerate(three_runs, start=1):
        book.add(as_run(trainer, f"run {number}"))
    series = book.overlay()
    assert [s.label for s in series] == ["clip=0.01 cell=rnn", "clip=0.01 cell=gru", "clip=off cell=rnn"]
    for curve, trainer in zip(series, three_runs, strict=True):
        assert list(curve.epochs) == [e.epoch for e in trainer.state.history]
        assert list(curve.values) == [e.perplexity for e in trainer.state.history]
    assert series[0].values != series[1].values  # different cells really learn differently
    speeds = book.overlay("chars_per_second", chosen=[1])
    assert [s.label for s in speeds] == ["run 2"]  # alone, nothing differs: its origin names it
    assert list(speeds[0].values) == [e.chars_per_second for e in three_runs[1].state.history]
    with pytest.raises(ConfigError, match="metric must be one of"):
        book.overlay("loss")


def test_csv_has_an_epoch_column_and_one_column_per_run(three_runs: list[Trainer], tmp_path: Path) -> None:
    book = RunBook()
    for number, trainer in enumerate(three_runs, start=1):
        book.add(as_run(trainer, f"run {number}"))
    path = book.export_csv(tmp_path / "out" / "compare.csv")
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[0] == ["epoch", "clip=0.01 cell=rnn", "clip=0.01 cell=gru", "clip=off cell=rnn"]
    assert [row[0] for row in rows[1:]] == ["1", "2", "3"]
    for column, trainer in enumerate(three_runs, start=1):
        written = [row[column] for row in rows[1:]]
        expected = [e.perplexity for e in trainer.state.history]
        assert [float(v) for v in written if v] == expected  # exactly: repr round-trips a float
    assert rows[3][3] == ""  # the clip-off run stopped at epoch 2
    with pytest.raises(OutputError, match="is a directory"):
        book.export_csv(tmp_path / "out")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(NotOursError, match="not an rnn-tui runs CSV"):
        book.export_csv(notes)
    assert notes.read_text() == "my notes\n"
    book.export_csv(notes, force=True)  # consent given (the app's dialog)
    book.export_csv(notes)  # now an rnn-tui CSV: replaced without asking
    with pytest.raises(ConfigError, match="no runs"):
        RunBook().export_csv(tmp_path / "empty.csv")


def test_a_checkpoint_and_its_continuation_are_one_curve(small: TrainConfig, corpus: Corpus, tmp_path: Path) -> None:
    first = train(small.with_changes(epochs=2), corpus)
    first.save(str(tmp_path / "half.ckpt"))
    checkpoint = load(tmp_path / "half.ckpt")
    book = RunBook()
    book.add_history(checkpoint.config, checkpoint.history, "checkpoint half.ckpt")
    assert book.add_history(checkpoint.config, checkpoint.history, "checkpoint half.ckpt") is None
    assert len(book) == 1  # loading the same checkpoint twice keeps one
    resumed = Trainer(checkpoint.config.with_changes(epochs=4), corpus)
    resumed.restore(checkpoint)
    resumed.run()
    replaced = book.add(as_run(resumed, "run 1"))
    assert replaced is not None and replaced.origin == "checkpoint half.ckpt"
    assert len(book) == 1
    assert list(book.overlay()[0].epochs) == [1, 2, 3, 4]
    # A different run from the same settings is a second curve, told apart by its seed.
    book.add(as_run(train(small.with_changes(epochs=2, seed=5), corpus), "run 2"))
    assert book.labels() == ["epochs=4 seed=0", "epochs=2 seed=5"]


def epochs(lrs: list[float], clip: float = 0.01) -> tuple[EpochEnd, ...]:
    return tuple(EpochEnd(i + 1, 100.0 / (i + 1), 1.0, 8960, lr, clip) for i, lr in enumerate(lrs))


def test_labels_name_live_changes_and_fall_back_to_origins() -> None:
    config = TrainConfig(seed=1)
    steady = Run(config, epochs([1e-3, 1e-3]), "run 1")
    raised = Run(config, epochs([1e-3, 1e-2, 1e-2]), "run 2")
    assert label_runs([steady, raised]) == ["lr=0.001", "lr=0.001→0.01"]
    twin = Run(config, epochs([1e-3, 1e-3]), "run 3")
    assert label_runs([steady, twin]) == ["run 1", "run 3"]
    wide = Run(config.with_changes(hidden=512, layers=2), epochs([1e-3]), "run 4")
    assert label_runs([steady, twin, wide]) == [
        "hidden=256 layers=1 (run 1)",
        "hidden=256 layers=1 (run 3)",
        "hidden=512 layers=2",
    ]
    assert RunBook().add(Run(config, (), "run 5")) is None  # no epoch: nothing to draw


def test_csv_carries_held_out_and_fresh_columns_beside_each_run() -> None:
    config = TrainConfig(seed=1, val_chars=5000)
    held_out = tuple(
        EpochEnd(e, 100.0 / e, 1.0, 8960, 1e-3, 0.01, 150.0 + e, 110.0 / e, 0.12) for e in (1, 2, 3)
    )  # held-out rises while training falls: what the columns are for
    book = RunBook()
    book.add(Run(config, held_out, "run 1"))
    book.add(Run(config.with_changes(state="epoch", val_chars=0), epochs([1e-3, 1e-3]), "run 2"))  # held-out off
    assert book.labels() == ["state=carry val_chars=5000", "state=epoch val_chars=0"]
    rows = list(csv.reader(io.StringIO(book.to_csv())))
    assert rows[0] == [
        "epoch",
        "state=carry val_chars=5000",
        "state=carry val_chars=5000 held-out",
        "state=carry val_chars=5000 fresh",
        "state=epoch val_chars=0",  # no empty held-out columns for a run without held-out figures
    ]
    assert [float(row[2]) for row in rows[1:]] == [151.0, 152.0, 153.0]
    assert [float(row[3]) for row in rows[1:]] == [110.0, 55.0, 110.0 / 3]
    assert rows[3][4] == ""  # run 2 stopped at epoch 2
    assert book.overlay("val_perplexity")[1].values == (None, None)  # drawn as nothing, not as zero
    assert book.to_csv(chosen=[1]).splitlines()[0] == "epoch,run 2"
    assert book.to_csv("seconds").splitlines()[0] == "epoch,state=carry val_chars=5000,state=epoch val_chars=0"


def test_a_failed_run_is_not_listed_as_running() -> None:
    """F10 lists the run on screen as 'running' only while it can still train (a failed run showed as running)."""
    from types import SimpleNamespace

    from tui.app.run_state import RunState
    from tui.app.screens.runs_compared import compared_runs

    history = [EpochEnd(1, 300.0, 0.2, 9_000, 0.001, 0.01)]
    trainer = SimpleNamespace(state=SimpleNamespace(history=history))
    status = SimpleNamespace(state=RunState.RUNNING)
    runs = SimpleNamespace(  # the parts of tui.app.run_control.RunControl that F10 reads
        run_book=RunBook(),
        current=SimpleNamespace(trainer=trainer, run_id=1),
        trainer=trainer,
        config=TrainConfig(seed=0),
        status=status,
    )
    assert [run.origin for run in compared_runs(runs).runs] == ["run 1, running"]
    for ended in (RunState.FAILED, RunState.FINISHED, RunState.STOPPED):
        status.state = ended
        assert compared_runs(runs).runs == []
