"""The test text (issue #28, item 1): where it lies in the split, where its figure is reported, and that nothing that
chooses reads it. Real corpus (the book's lyrics), small models."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from test_bad_inputs import assert_one_line_error, run_main

from engine import events
from engine.config import TrainConfig
from engine.data.corpus import Corpus, load_corpus, read_text
from engine.trainer import Trainer


def test_the_book_split_keeps_its_training_and_held_out_text_and_gains_a_test_stretch(corpus_path: Path) -> None:
    whole = read_text(corpus_path, 0)
    without = load_corpus(corpus_path, 10_000, 1_500)
    with_test = load_corpus(corpus_path, 10_000, 1_500, test_fraction=0.1)
    assert with_test.text == without.text == whole[:10_000]  # the parity figures read the same text
    assert with_test.held_out == without.held_out == whole[10_000:11_500]
    assert with_test.vocab == without.vocab
    assert without.test == ""
    assert with_test.test == whole[11_500:13_000]  # as many characters as held out, right after them


def test_a_whole_corpus_is_cut_by_both_fractions_and_test_fraction_0_is_todays_split(corpus_path: Path) -> None:
    whole = read_text(corpus_path, 0)
    today = load_corpus(corpus_path, 0, 1_500, 0.1)
    split = load_corpus(corpus_path, 0, 1_500, 0.1, test_fraction=0.1)
    n = len(whole)
    assert today.text + today.held_out == whole and today.test == ""
    assert split.text + split.held_out + split.test == whole
    assert len(split.test) == round(n * 0.1) and len(split.held_out) == round(n * 0.1)


def test_fractions_that_leave_nothing_to_train_on_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--headless", "--max-chars", "0", "--val-fraction", "0.5", "--test-fraction", "0.5"]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "--val-fraction 0.5 + --test-fraction 0.5 must be below 1")


def test_a_headless_run_ends_with_the_test_line_and_the_last_metrics_record_has_it(
    corpus_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "m.jsonl"
    argv = ["train", "--headless", "--hidden", "16", "--epochs", "3", "--seed", "0", "--pred-period", "2"]
    from tui.main import main

    assert main([*argv, "--threads", "1", "--metrics", str(metrics)]) == 0
    out = capsys.readouterr()
    last = out.out.strip().splitlines()[-1]
    assert last.startswith("test perplexity ")
    figure = float(last.split()[-1])
    assert "test text: 1,500 characters after the held-out text" in out.err
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["test_perplexity"] is None for r in records] == [True, True, False]
    assert records[-1]["test_perplexity"] == pytest.approx(figure, rel=1e-6)
    best = min(records, key=lambda r: r["val_perplexity"])
    assert records[-1]["test_epoch"] == best["epoch"]
    assert 1 < figure < 1027  # better than a uniform guess over the vocabulary, after three epochs
    # The verdict: right after each held-out line, against counting on held-out; before the test line, on test.
    lines = out.out.strip().splitlines()
    held = [i for i, line in enumerate(lines) if line.startswith("held-out perplexity ")]
    assert held and all(lines[i + 1].startswith("counting: 7-gram 129.0 — this model ") for i in held)
    assert lines[held[-1] + 1].endswith("worse (held-out)")
    assert lines[-2].startswith("counting: 7-gram 133.2 — this model ") and lines[-2].endswith("worse (test)")
    assert all(r["counting_order"] == 7 and r["counting_best"] == pytest.approx(128.963, abs=1e-3) for r in records)
    assert records[-1]["counting_test"] == pytest.approx(133.188, abs=1e-3) and "counting_test" not in records[0]


def planted(corpus: Corpus, test: str) -> Corpus:
    return dataclasses.replace(corpus, test=test)


def run_with(config: TrainConfig, corpus: Corpus, save_best: str) -> tuple[Trainer, list[events.Event]]:
    seen: list[events.Event] = []
    trainer = Trainer(config, corpus, seen.append, threads=1, save_best=save_best)
    trainer.run()
    return trainer, seen


def test_no_choice_reads_the_test_text_even_one_planted_to_change_each_choice(
    corpus_path: Path, tmp_path: Path
) -> None:
    """Two runs, alike but for the test text: an honest one (the text after the held-out text), and the training
    text's own start, which a memorising model predicts better every epoch. Read by early stopping or the best
    checkpoint, the planted text would never stop the run and would make the last epoch the best; the held-out text
    stops it early, at a best epoch before the last. Both runs choose the same: same figures, same stop, same
    best checkpoint; only the test figure differs."""
    config = TrainConfig(
        corpus=str(corpus_path),
        seed=0,
        hidden=128,
        epochs=40,
        patience=8,
        lr=3e-3,
        clip=0.0,
        state="epoch",
        pred_period=10**6,
    )  # stops at epoch 19, the best held-out at 11; the planted text reads 128 there and 29 at the last weights
    corpus = load_corpus(corpus_path, 10_000, 1_500, test_fraction=0.1)
    honest, honest_events = run_with(config, corpus, str(tmp_path / "honest.ckpt"))
    trap, trap_events = run_with(config, planted(corpus, corpus.text[:1_500]), str(tmp_path / "trap.ckpt"))

    def figures(seen: list[events.Event]) -> list[tuple[float, float | None]]:
        return [(e.perplexity, e.val_perplexity) for e in seen if isinstance(e, events.EpochEnd)]

    assert figures(honest_events) == figures(trap_events)  # bit for bit, on this machine
    assert honest.state.epoch == trap.state.epoch < config.epochs  # patience stopped both, at the same epoch
    best_honest, best_trap = honest.best_epoch(), trap.best_epoch()
    assert best_honest is not None and best_trap is not None and best_honest.epoch == best_trap.epoch
    assert best_honest.epoch < honest.state.epoch  # held-out was rising: the planted text would have chosen the last
    train_figures = [p for p, _ in figures(trap_events)]
    assert train_figures[-1] < train_figures[best_honest.epoch - 1]  # ...as the model kept memorising
    assert honest.saved_best is not None and trap.saved_best is not None
    assert honest.saved_best.epoch == trap.saved_best.epoch == best_honest.epoch
    test_honest, test_trap = honest.test_figure(), trap.test_figure()
    assert test_honest is not None and test_trap is not None
    assert test_honest.epoch == test_trap.epoch == best_honest.epoch and test_honest.best  # the best epoch's weights
    assert test_trap.perplexity != test_honest.perplexity  # the planted text was read, for the report only
    assert trap.tester is not None  # and it would have chosen otherwise: the last weights read it better
    assert trap.tester(trap.model).held_out.perplexity < 0.5 * test_trap.perplexity
    finished = [e for e in trap_events if isinstance(e, events.Finished)]
    assert finished and finished[-1].test == test_trap and finished[-1].reason.startswith("stopped early")


def test_a_checkpoint_from_before_the_test_text_keeps_its_split() -> None:
    old = TrainConfig(max_chars=0).to_dict()
    del old["test_fraction"]
    assert TrainConfig.from_dict(old).test_fraction == 0.0  # its training text stays as it was
    assert TrainConfig.from_dict(TrainConfig().to_dict()).test_fraction == 0.1
