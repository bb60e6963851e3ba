"""--eval-stretch: the held-out and test texts read in longer stretches from a zero state, so that a character is
predicted from as much of the text before it as counting reads (engine/evaluate.py). Real training on The Time
Machine (shipped with the package)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_bad_inputs import assert_one_line_error, run_main

from engine import events
from engine.config import stream_length
from engine.evaluate import Evaluator
from engine.lab.ngram import held_out_targets
from engine.lab.verdict import counting_table
from engine.session import open_session
from tui.main import main

SETTINGS = {"preset": "d2l-en", "cell": "lstm", "hidden": 64, "optimizer": "adam", "lr": 0.01, "epochs": 4}


@pytest.fixture(scope="module")
def trained() -> tuple[object, list[events.EpochEnd]]:
    seen: list[events.Event] = []
    session = open_session({**SETTINGS, "seed": 0, "pred_period": 10**6}, listener=seen.append)
    session.trainer.run()
    return session, [e for e in seen if isinstance(e, events.EpochEnd)]


def evaluate(session: object, stretch: int) -> tuple[float, float, int]:
    trainer = session.trainer  # type: ignore[attr-defined]
    config = dataclasses.replace(trainer.config, eval_stretch=stretch)
    evaluation = Evaluator(config, trainer.corpus, torch.device("cpu"))(trainer.model)
    return evaluation.held_out.perplexity, evaluation.fresh.perplexity, evaluation.held_out.targets


def test_a_stretch_of_num_steps_is_the_default_bit_for_bit(trained: tuple[object, list[events.EpochEnd]]) -> None:
    session, epochs = trained
    steps = session.trainer.config.num_steps  # type: ignore[attr-defined]
    assert evaluate(session, 0) == evaluate(session, steps)
    assert evaluate(session, 0)[0] == epochs[-1].val_perplexity  # what the run itself reported


def test_longer_stretches_give_the_model_its_context(trained: tuple[object, list[events.EpochEnd]]) -> None:
    session, _ = trained
    short, fresh_short, _ = evaluate(session, 0)
    long, fresh_long, targets = evaluate(session, 1000)
    # A trained LSTM predicts better from more of the text: the first characters of each 35 lose their context.
    assert long < short * 0.99, (short, long)
    # The fresh-state figure is the cold start: it keeps num_steps, whatever the stretch.
    assert fresh_long == pytest.approx(fresh_short, rel=1e-6)
    held_out = session.trainer.corpus.held_out  # type: ignore[attr-defined]
    assert targets == held_out_targets(list(range(len(held_out))), 1000) == (len(held_out) - 1) // 1000 * 1000


def test_counting_reads_the_same_targets_as_the_model(trained: tuple[object, list[events.EpochEnd]]) -> None:
    session, _ = trained
    trainer = session.trainer  # type: ignore[attr-defined]
    config = dataclasses.replace(trainer.config, eval_stretch=1000)
    table = counting_table(trainer.corpus, stream_length(config))
    assert table is not None
    assert table.targets == Evaluator(config, trainer.corpus, torch.device("cpu")).held_targets


def test_the_headless_run_says_how_long_its_stretches_are(capsys: pytest.CaptureFixture[str]) -> None:
    argv = "train --headless --preset d2l-en --hidden 16 --epochs 1 --eval-stretch 700 --seed 0 --pred-period 1000"
    code = main(argv.split())
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert code == 0, out
    assert "read in stretches of 700 from a zero state" in out
    assert "test perplexity" in out


def test_a_negative_stretch_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(["train", "--headless", "--preset", "d2l-en", "--eval-stretch", "-1"], capsys)
    assert_one_line_error(code, err, "--eval-stretch")
