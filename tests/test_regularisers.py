"""The regularisers (#28 item 4): off, each is today's run bit for bit; on, it changes held-out perplexity; every impl
computes the same with it; a resumed run takes the same schedule; old checkpoints still load."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from test_optim import batches, train
from test_trainer import resume, train_acting_at
from test_trainer import train as run
from torch import nn

from engine import events, schedule
from engine.checkpoint import load
from engine.config import TrainConfig, ineffective_settings
from engine.data.corpus import Corpus, load_corpus
from engine.errors import ConfigError
from engine.model import CharRNN, make_recurrent_layer, model_for
from engine.optim import SGD, Adam
from engine.trainer import Trainer


def small(config: TrainConfig, **changes: object) -> TrainConfig:
    """A few seconds' run on the book's 10,000 characters, with held-out evaluation."""
    return config.with_changes(**{"epochs": 2, "hidden": 32, "cell": "lstm", "lr": 0.01, "clip": 1.0, **changes})


@pytest.fixture(scope="module")
def held(corpus_path: Path) -> Corpus:
    """The book's split: 10,000 training characters and the 1,500 after them held out."""
    return load_corpus(corpus_path, 10_000, 1_500)


@pytest.fixture(scope="module")
def base_run(corpus_path: object, held: Corpus) -> list[float]:
    """small()'s held-out perplexities with every regulariser off."""
    return held_out(run(small(TrainConfig(corpus=str(corpus_path), seed=0)), held)[1])


def held_out(seen: list[events.Event]) -> list[float]:
    return [e.val_perplexity for e in seen if isinstance(e, events.EpochEnd) and e.val_perplexity is not None]


def test_off_draws_the_books_weights_and_nothing_more() -> None:
    """With every regulariser off the model is the book's layers, drawn from the generator as before they existed."""
    torch.manual_seed(5)
    layer, dense = make_recurrent_layer("gru", 40, 16, 2, 0.0), nn.Linear(16, 40)
    after_book = torch.get_rng_state()
    torch.manual_seed(5)
    model = model_for(TrainConfig(cell="gru", hidden=16, layers=2), 40)
    assert torch.equal(torch.get_rng_state(), after_book)
    assert list(model.state_dict()) == [f"rnn.{k}" for k in layer.state_dict()] + ["dense.weight", "dense.bias"]
    for name, value in layer.state_dict().items():
        assert torch.equal(model.state_dict()[f"rnn.{name}"], value)
    assert torch.equal(model.dense.weight, dense.weight)


def test_off_in_effect_is_the_same_run_bit_for_bit(book_config: TrainConfig, held: Corpus) -> None:
    """Settings that do nothing as given (a variational mask of no dropout, decoupled decay of 0) leave the run as
    the default one, to the last bit; the defaults are those of the run before the regularisers."""
    config = small(book_config)
    base = run(config, held)[0]
    same = run(config.with_changes(variational="on", decay="decoupled", schedule="constant"), held)[0]
    assert [e.perplexity for e in same.state.history] == [e.perplexity for e in base.state.history]
    assert [e.val_perplexity for e in same.state.history] == [e.val_perplexity for e in base.state.history]
    for x, y in zip(base.model.state_dict().values(), same.model.state_dict().values(), strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize(
    "changes",
    [
        {"io_dropout": 0.3},
        {"io_dropout": 0.3, "variational": "on"},
        {"embed": 16},
        {"embed": 16, "tie": "on"},
        {"tie": "on"},
        {"weight_decay": 0.1, "decay": "decoupled"},
        {"schedule": "cosine"},
        {"schedule": "plateau", "lr": 0.2},
    ],
    ids=lambda changes: ",".join(f"{k}={v}" for k, v in changes.items()),
)
def test_on_changes_held_out_perplexity(
    book_config: TrainConfig, held: Corpus, base_run: list[float], changes: dict[str, object]
) -> None:
    _trainer, seen = run(small(book_config, **changes), held)
    changed = held_out(seen)
    assert len(changed) == len(base_run) == 2 and all(math.isfinite(p) for p in changed)
    assert changed != base_run
    assert changed[-1] < 0.8 * len(held.vocab)  # it learned: far below guessing uniformly


def test_plateau_halves_the_rate_when_held_out_stalls(book_config: TrainConfig, held: Corpus) -> None:
    """A rate far too high stalls held-out; the plateau schedule halves it, and the epoch records the rate it took."""
    config = small(book_config, schedule="plateau", lr=0.2, epochs=4)
    _trainer, seen = run(config, held)
    epochs = [e for e in seen if isinstance(e, events.EpochEnd)]
    expected = [config.lr * schedule.plateau_factor(epochs[:i]) for i in range(len(epochs))]
    assert [e.scheduled_lr for e in epochs] == expected
    assert epochs[0].scheduled_lr == config.lr


def test_schedule_factors() -> None:
    def epoch(val: float) -> events.EpochEnd:
        return events.EpochEnd(1, 10.0, 1.0, 100, 0.1, 0.0, val_perplexity=val)

    assert schedule.plateau_factor([]) == 1.0
    assert schedule.plateau_factor([epoch(9), epoch(8), epoch(7)]) == 1.0
    assert schedule.plateau_factor([epoch(9), epoch(8), epoch(8.5)]) == 0.5
    assert schedule.plateau_factor([epoch(9), epoch(9.5), epoch(9.6), epoch(8)]) == 0.25
    assert schedule.cosine_factor(0, 100) == 1.0
    assert schedule.cosine_factor(50, 100) == pytest.approx(0.5)
    assert schedule.cosine_factor(100, 100) == pytest.approx(0.0)
    assert schedule.factor("constant", [epoch(9), epoch(10)], 50, 100) == 1.0


@pytest.mark.parametrize("sched", ["cosine", "plateau"])
def test_a_scheduled_run_resumes_exactly(book_config: TrainConfig, held: Corpus, tmp_path: Path, sched: str) -> None:
    """The schedule's state is the run's position and history, which a checkpoint carries: resumed mid-epoch, the
    rates and perplexities are the unbroken run's."""
    config = small(book_config, epochs=3, schedule=sched, lr=0.05, embed=8, tie="on", io_dropout=0.2)
    straight = run(config, held)[0].state.history
    first, _ = train_acting_at(config, held, (2, 3), Trainer.stop)
    first.save(str(tmp_path / "mid.ckpt"))
    resumed, _ = resume(load(tmp_path / "mid.ckpt"), held)
    assert [e.perplexity for e in resumed.state.history] == [e.perplexity for e in straight]
    assert [e.scheduled_lr for e in resumed.state.history] == [e.scheduled_lr for e in straight]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("changes", [{"embed": 12}, {"embed": 12, "tie": "on"}, {"tie": "on"}, {"io_dropout": 0.4}])
def test_every_impl_computes_the_same_with_each_regulariser(cell: str, changes: dict[str, Any]) -> None:
    """fused, torch and scratch: the same loss and gradients (float64) with the embedding, tying and io dropout (the
    same masks: each draws them in the same order)."""
    config = TrainConfig(cell=cell, hidden=10).with_changes(**changes)
    torch.manual_seed(0)
    reference = model_for(config, 30).double()
    inputs = torch.randint(0, 30, (7, 4))
    targets = torch.randint(0, 30, (7, 4))
    results = []
    for impl in ("fused", "torch", "scratch"):
        model = model_for(config, 30, impl=impl).double()
        model.load_state_dict(reference.state_dict())
        zeros = torch.zeros(1, 4, 10, dtype=torch.float64)
        state = (zeros, zeros.clone()) if cell == "lstm" else zeros
        torch.manual_seed(1)
        loss, _ = model.loss(inputs, targets, state)
        loss.backward()
        results.append((loss.detach(), [p.grad for p in model.parameters()]))
    for loss, grads in results[1:]:
        torch.testing.assert_close(loss, results[0][0])
        for grad, expected in zip(grads, results[0][1], strict=True):
            torch.testing.assert_close(grad, expected)


def test_tied_weights_are_one_tensor_and_saved_once() -> None:
    same = model_for(TrainConfig(hidden=16, tie="on"), 30)
    assert same.embedding is not None and same.dense.weight is same.embedding.weight
    projected = model_for(TrainConfig(hidden=16, embed=8, tie="on"), 30)
    keys = list(projected.state_dict())
    assert "embedding.weight" in keys and "dense.projection.weight" in keys and "dense.weight" not in keys
    assert tuple(projected.dense.weight.shape) == (30, 16)
    parameters = sum(p.numel() for p in projected.parameters())
    untied = sum(p.numel() for p in model_for(TrainConfig(hidden=16, embed=8), 30).parameters())
    assert parameters == untied - 30 * 16 + 8 * 16  # the output's own weights replaced by the projection


def test_generation_and_evaluation_read_the_embedding(book_config: TrainConfig, corpus: Corpus) -> None:
    """Generation's stepper and the lab's unrolled reading give the recurrent layer's own outputs."""
    from engine.lab.unroll import unroll
    from engine.model import Stepper

    model = model_for(TrainConfig(cell="gru", hidden=12, embed=6, tie="on"), len(corpus.vocab)).double().eval()
    inputs = torch.tensor(corpus.indices[:9]).view(9, 1)
    zeros = torch.zeros(1, 1, 12, dtype=torch.float64)
    with torch.no_grad():
        logits, _ = model(inputs, zeros)
        stepper = Stepper(model, zeros)
        stepped = torch.stack([stepper(int(i)) for i in inputs.view(-1)])
        by_index = unroll(model, inputs)
        by_one_hot = unroll(model, nn.functional.one_hot(inputs, len(corpus.vocab)).double())
    torch.testing.assert_close(stepped, logits)
    torch.testing.assert_close(torch.cat(by_index.logits), logits)
    torch.testing.assert_close(torch.cat(by_one_hot.logits), logits)


def test_decoupled_adam_is_torchs_adamw_bit_for_bit(corpus: Corpus) -> None:
    torch.manual_seed(3)
    ours = CharRNN(len(corpus.vocab), "rnn", hidden=32)
    theirs = CharRNN(len(corpus.vocab), "rnn", hidden=32)
    theirs.load_state_dict(ours.state_dict())
    data = batches(corpus, 6)
    train(ours, Adam(list(ours.parameters()), lr=0.01, weight_decay=0.1, decoupled=True), data)
    train(theirs, torch.optim.AdamW(theirs.parameters(), lr=0.01, weight_decay=0.1, fused=True), data)
    for x, y in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True):
        assert torch.equal(x, y)


def test_decoupled_sgd_shrinks_the_weights_apart_from_the_gradient() -> None:
    weight = nn.Parameter(torch.tensor([2.0, -4.0]))
    weight.grad = torch.tensor([1.0, 1.0])
    SGD([weight], lr=0.5, weight_decay=0.1, decoupled=True).step()
    assert weight.tolist() == pytest.approx([2.0 * 0.95 - 0.5, -4.0 * 0.95 - 0.5])


def test_old_checkpoints_read_the_regularisers_off() -> None:
    old = {k: v for k, v in TrainConfig().to_dict().items() if k not in ("io_dropout", "embed", "tie", "decay")}
    config = TrainConfig.from_dict({k: v for k, v in old.items() if k not in ("variational", "schedule")})
    off = (config.io_dropout, config.embed, config.tie, config.variational, config.decay, config.schedule)
    assert off == (0.0, 0, "off", "off", "l2", "constant")


def test_bad_combinations_are_one_line() -> None:
    with pytest.raises(ConfigError, match="schedule plateau needs held-out evaluation, but val-chars is 0"):
        TrainConfig(schedule="plateau", val_chars=0)
    with pytest.raises(ConfigError, match="embed must be a whole number ≥ 0"):
        TrainConfig(embed=-1)
    with pytest.raises(ConfigError, match=r"io.dropout must be in"):
        TrainConfig(io_dropout=1.0)
    notes = ineffective_settings(TrainConfig(variational="on", decay="decoupled"))
    assert len(notes) == 2


def test_the_generalise_ladder_names_each_step_and_compares_with_counting() -> None:
    from engine.config import preset_config
    from engine.lessons import find_lesson
    from engine.observations import GENERALISE_STEPS, LessonRun, generalise_step

    lesson = find_lesson("generalise")
    for index, (_name, _adds, settings) in enumerate(GENERALISE_STEPS):
        assert generalise_step(preset_config(dict(settings))) == index
    epochs = (
        events.EpochEnd(1, 5.0, 1.0, 100, 0.004, 1.0, val_perplexity=4.5),
        events.EpochEnd(2, 4.0, 1.0, 100, 0.004, 1.0, val_perplexity=4.2, test_perplexity=4.1, test_epoch=2),
    )
    dropout_step = preset_config(dict(GENERALISE_STEPS[2][2]))
    observed = lesson.observe(LessonRun(dropout_step, epochs, counting=(6, 3.8)))
    assert observed.text.startswith("step 3 of 5, dropout: test perplexity 4.10 (the best held-out epoch, 2: 4.20)")
    assert "counting (6-gram) gets 3.80 on the same test text: ×1.08, worse than counting" in observed.text
    assert "Next, an embedding tied to the output layer: --preset whole-en --schedule constant" in observed.text
    assert observed.figure("times_counting") == pytest.approx(4.1 / 3.8)
    unknown = lesson.observe(LessonRun(dropout_step, epochs))
    assert unknown.figure("counting_test") is None and "rnn-tui lab ngram" in unknown.text
