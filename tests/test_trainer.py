from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from engine import events
from engine.checkpoint import Checkpoint, load
from engine.config import TrainConfig
from engine.data.corpus import Corpus
from engine.errors import ConfigError, PrefixError
from engine.generate import generate
from engine.trainer import Trainer


def train(config: TrainConfig, corpus: Corpus) -> tuple[Trainer, list[events.Event]]:
    seen: list[events.Event] = []
    trainer = Trainer(config, corpus, seen.append)
    trainer.run()
    return trainer, seen


def train_acting_at(
    config: TrainConfig, corpus: Corpus, at: tuple[int, int], action: Callable[[Trainer], object]
) -> tuple[Trainer, list[events.Event]]:
    """Train, calling action(trainer) from the listener once batch `at` = (epoch, batch) is done."""
    seen: list[events.Event] = []
    trainer = Trainer(config, corpus)

    def listener(event: events.Event) -> None:
        seen.append(event)
        if isinstance(event, events.BatchDone) and (event.epoch, event.batch) == at:
            action(trainer)

    trainer.listener = listener
    trainer.run()
    return trainer, seen


def resume(checkpoint: Checkpoint, corpus: Corpus, epochs: int | None = None) -> tuple[Trainer, list[events.Event]]:
    config = checkpoint.config if epochs is None else checkpoint.config.with_changes(epochs=epochs)
    seen: list[events.Event] = []
    trainer = Trainer(config, corpus, seen.append)
    trainer.restore(checkpoint)
    trainer.run()
    return trainer, seen


def perplexities(seen: list[events.Event]) -> list[float]:
    return [e.perplexity for e in seen if isinstance(e, events.EpochEnd)]


def test_perplexity_falls_on_the_real_corpus(book_config: TrainConfig, corpus: Corpus) -> None:
    _trainer, seen = train(book_config.with_changes(epochs=12, pred_period=12), corpus)
    curve = perplexities(seen)
    assert len(curve) == 12
    assert curve[0] > 200  # about the vocabulary size at the start: 1,027 nearly equal guesses
    assert curve[-1] < 0.6 * curve[0]
    samples = [e for e in seen if isinstance(e, events.Samples)]
    assert [s.epoch for s in samples] == [12]
    assert [p for p, _ in samples[0].samples] == ["分开", "不分开"]
    assert all(len(text) == len(prefix) + 50 for prefix, text in samples[0].samples)
    epoch = seen[-3]
    assert isinstance(epoch, events.EpochEnd) and epoch.chars == 8 * 32 * 35
    assert isinstance(seen[-1], events.Finished) and not seen[-1].stopped


def test_same_seed_same_perplexities(book_config: TrainConfig, corpus: Corpus) -> None:
    config = book_config.with_changes(epochs=3, seed=7, sampling="random")
    first = perplexities(train(config, corpus)[1])
    assert first == perplexities(train(config, corpus)[1])
    assert first != perplexities(train(config.with_changes(seed=8), corpus)[1])


@pytest.mark.parametrize("sampling,cell", [("consecutive", "rnn"), ("random", "lstm")])
def test_resume_gives_the_same_perplexities(
    book_config: TrainConfig, corpus: Corpus, tmp_path: Path, sampling: str, cell: str
) -> None:
    config = book_config.with_changes(epochs=4, sampling=sampling, cell=cell, hidden=64, layers=2, dropout=0.2)
    straight = perplexities(train(config, corpus)[1])

    first, _ = train(config.with_changes(epochs=2), corpus)
    first.save(str(tmp_path / "half.ckpt"))
    checkpoint = load(tmp_path / "half.ckpt")
    assert checkpoint.epoch == 2 and len(checkpoint.history) == 2
    resumed, seen = resume(checkpoint, corpus, epochs=4)
    assert [e.perplexity for e in resumed.state.history] == straight
    assert [e.epoch for e in seen if isinstance(e, events.EpochEnd)] == [3, 4]


@pytest.mark.parametrize("sampling,cell", [("consecutive", "rnn"), ("random", "lstm")])
def test_a_run_stopped_mid_epoch_resumes_exactly(
    book_config: TrainConfig, corpus: Corpus, tmp_path: Path, sampling: str, cell: str
) -> None:
    config = book_config.with_changes(epochs=3, sampling=sampling, cell=cell, hidden=64, layers=2, dropout=0.2)
    straight = perplexities(train(config, corpus)[1])

    first, seen = train_acting_at(config, corpus, (2, 3), Trainer.stop)
    assert seen[-1] == events.Finished(1, stopped=True)
    saved = first.save(str(tmp_path / "mid.ckpt"))
    assert saved.position(first.batches_per_epoch) == "batch 3 of 8 of epoch 2"  # one epoch done, 3 batches in

    checkpoint = load(tmp_path / "mid.ckpt")
    assert checkpoint.position() == "batch 3 of epoch 2"
    resumed, resumed_seen = resume(checkpoint, corpus)
    assert [e.perplexity for e in resumed.state.history] == straight
    batches = [e.batch for e in resumed_seen if isinstance(e, events.BatchDone) and e.epoch == 2]
    assert batches == [4, 5, 6, 7, 8]  # only the batches the first run had not trained


def test_a_checkpoint_saved_while_training_goes_on_resumes_exactly(
    book_config: TrainConfig, corpus: Corpus, tmp_path: Path
) -> None:
    """ctrl+s in the app saves between two batches of a running epoch; the run itself is not disturbed."""
    config = book_config.with_changes(epochs=2, hidden=64)
    straight = perplexities(train(config, corpus)[1])
    _trainer, seen = train_acting_at(
        config, corpus, (2, 5), lambda trainer: trainer.save(str(tmp_path / "running.ckpt"))
    )
    assert perplexities(seen) == straight
    resumed, _ = resume(load(tmp_path / "running.ckpt"), corpus)
    assert [e.perplexity for e in resumed.state.history] == straight


def test_divergence_stops_cleanly_keeping_the_last_finite_weights(book_config: TrainConfig, corpus: Corpus) -> None:
    config = book_config.with_changes(optimizer="sgd", lr=10.0, clip=0, epochs=5)
    seen: list[events.Event] = []
    trainer = Trainer(config, corpus, seen.append)
    before: dict[str, torch.Tensor] = {}

    def remember(event: events.Event) -> None:
        seen.append(event)
        if isinstance(event, events.BatchDone):
            before.update({k: v.clone() for k, v in trainer.model.state_dict().items()})

    trainer.listener = remember
    trainer.run()
    failure = seen[-1]
    assert isinstance(failure, events.Failed)
    assert f"epoch {failure.epoch}, batch {failure.batch}" in failure.message
    assert "diverged" in failure.message
    # the weights are exactly those after the last good batch, not the step that blew up
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert not any(isinstance(e, events.Finished) for e in seen)


def test_pause_step_stop_from_another_thread(book_config: TrainConfig, corpus: Corpus) -> None:
    seen: list[events.Event] = []
    first_batch = threading.Event()

    def listener(event: events.Event) -> None:
        seen.append(event)
        if isinstance(event, events.BatchDone):
            first_batch.set()

    trainer = Trainer(book_config.with_changes(epochs=1000), corpus, listener)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    assert first_batch.wait(60)
    trainer.pause()
    deadline = threading.Event()
    while not any(isinstance(e, events.Paused) for e in seen):
        deadline.wait(0.01)
    paused_at = trainer.state.epoch
    deadline.wait(0.3)
    assert trainer.state.epoch == paused_at  # really paused
    trainer.step()
    while trainer.state.epoch == paused_at:
        deadline.wait(0.01)
    deadline.wait(0.3)
    assert trainer.state.epoch == paused_at + 1 and trainer.paused  # one epoch, then paused again
    trainer.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(seen[-1], events.Finished) and seen[-1].stopped


def test_live_learning_rate_applies_between_batches(book_config: TrainConfig, corpus: Corpus) -> None:
    seen: list[events.Event] = []
    trainer = Trainer(book_config.with_changes(epochs=2), corpus, seen.append)
    trainer.update(lr=0.01, pred_len=5)
    trainer.update(pred_period=trainer.config.pred_period)  # a field left unedited: the value it has is no change
    with pytest.raises(ConfigError, match="cell"):
        trainer.update(cell="lstm")
    with pytest.raises(ConfigError, match="lr"):
        trainer.update(lr=-1)
    trainer.run()
    applied = [e for e in seen if isinstance(e, events.SettingsApplied)]
    assert [e.changes for e in applied] == [(("lr", 0.01), ("pred_len", 5))]
    assert applied[0].config == trainer.config and applied[0].config.lr == 0.01  # the whole config, as applied
    assert [e.lr for e in seen if isinstance(e, events.EpochEnd)] == [0.01, 0.01]
    assert all(group["lr"] == 0.01 for group in trainer.optimizer.param_groups)


def test_generation_greedy_sampled_and_bad_prefixes(book_config: TrainConfig, corpus: Corpus) -> None:
    trainer, _ = train(book_config.with_changes(epochs=1), corpus)
    model, vocab = trainer.copy_model(), trainer.vocab
    greedy = generate(model, vocab, "分开", 50)
    assert greedy.startswith("分开") and len(greedy) == 52
    assert greedy == generate(model, vocab, "分开", 50)
    a = generate(model, vocab, "分开", 30, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(3))
    b = generate(model, vocab, "分开", 30, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(3))
    assert a == b and len(a) == 32
    long_prefix = corpus.text[:3000]
    assert generate(model, vocab, long_prefix, 5).startswith(long_prefix)
    with pytest.raises(PrefixError, match="'開'"):
        generate(model, vocab, "分開", 5)  # the book's page prints Traditional characters
    with pytest.raises(PrefixError, match="empty"):
        generate(model, vocab, "", 5)
    with pytest.raises(ConfigError, match="temperature"):
        generate(model, vocab, "分开", 5, temperature=0)


def test_config_rejects_bad_values() -> None:
    for bad in (
        {"lr": 0},
        {"lr": math.nan},
        {"lr": math.inf},
        {"clip": -1},
        {"hidden": 0},
        {"epochs": -3},
        {"cell": "transformer"},
        {"dropout": 1.0},
        {"prefixes": ("",)},
        {"batch_size": 0},
    ):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)


def test_generating_while_training_changes_nothing(book_config: TrainConfig, corpus: Corpus) -> None:
    config = book_config.with_changes(epochs=3, seed=11)
    quiet = perplexities(train(config, corpus)[1])

    generated: list[str] = []
    trainer = Trainer(config, corpus)

    def generate_often(event: events.Event) -> None:
        if isinstance(event, events.BatchDone):
            worker = threading.Thread(
                target=lambda: generated.append(generate(trainer.copy_model(), trainer.vocab, "分开", 20))
            )
            worker.start()
            worker.join()

    trainer.listener = generate_often
    trainer.run()
    assert len(generated) == 3 * 8
    assert [e.perplexity for e in trainer.state.history] == quiet
