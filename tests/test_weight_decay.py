"""--weight-decay, the setting added through one declaration: L2 on the weights, live, resumable, sweepable."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine import events
from engine.config import TrainConfig
from engine.data.corpus import Corpus
from engine.trainer import Trainer


def norm(trainer: Trainer) -> float:
    return float(torch.linalg.vector_norm(torch.cat([p.detach().flatten() for p in trainer.model.parameters()])))


def trained(config: TrainConfig, corpus: Corpus) -> tuple[Trainer, list[events.Event]]:
    seen: list[events.Event] = []
    trainer = Trainer(config, corpus, seen.append, threads=1)
    trainer.run()
    return trainer, seen


@pytest.mark.parametrize(("optimizer", "lr", "clip"), [("adam", 1e-3, 0.01), ("sgd", 1.0, 1.0)])
def test_weight_decay_shrinks_the_weights_on_the_real_corpus(
    corpus: Corpus, optimizer: str, lr: float, clip: float
) -> None:
    base = TrainConfig(seed=0, hidden=32, epochs=2, pred_period=100, val_chars=0, optimizer=optimizer, lr=lr, clip=clip)
    plain, _ = trained(base, corpus)
    decayed, seen = trained(base.with_changes(weight_decay=1e-3), corpus)
    assert norm(decayed) < norm(plain)
    assert decayed.optimizer.param_groups[0]["weight_decay"] == 1e-3
    epochs = [e for e in seen if isinstance(e, events.EpochEnd)]
    assert [e.weight_decay for e in epochs] == [1e-3, 1e-3]
    assert epochs[-1].record()["weight_decay"] == 1e-3  # what --metrics writes and a sweep's history keeps


def test_zero_is_the_default_and_trains_as_before(corpus: Corpus) -> None:
    """0 takes the optimizers' old path (tests/test_optim.py: bit for bit torch.optim without weight_decay)."""
    assert TrainConfig().weight_decay == 0.0
    base = TrainConfig(seed=0, hidden=32, epochs=1, pred_period=100, val_chars=0)
    default, _ = trained(base, corpus)
    explicit, _ = trained(base.with_changes(weight_decay=0.0), corpus)
    for a, b in zip(default.model.parameters(), explicit.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert default.optimizer.param_groups[0]["weight_decay"] == 0


def test_weight_decay_is_live_and_a_resumed_run_takes_the_new_value(corpus: Corpus, tmp_path: Path) -> None:
    config = TrainConfig(seed=0, hidden=32, epochs=2, pred_period=100, val_chars=0)
    seen: list[events.Event] = []
    trainer = Trainer(config, corpus, threads=1)

    def listener(event: events.Event) -> None:
        seen.append(event)
        if isinstance(event, events.BatchDone) and (event.epoch, event.batch) == (1, 2):
            trainer.update(weight_decay=1e-4)

    trainer.listener = listener
    trainer.run()
    applied = [e for e in seen if isinstance(e, events.SettingsApplied)]
    assert applied and applied[0].changes == (("weight_decay", 1e-4),)
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 1e-4
    assert [e.weight_decay for e in seen if isinstance(e, events.EpochEnd)] == [1e-4, 1e-4]

    path = tmp_path / "decayed.ckpt"
    trainer.save(str(path))
    from engine.checkpoint import load
    from engine.session import resume_config

    checkpoint = load(str(path))
    assert checkpoint.config.weight_decay == 1e-4
    resumed_config = resume_config(checkpoint.config, {"weight_decay": 0.0, "epochs": 3})
    resumed = Trainer(resumed_config, corpus, threads=1)
    resumed.restore(checkpoint)  # the checkpoint's optimizer group says 1e-4: the resumed run's setting wins
    assert resumed.optimizer.param_groups[0]["weight_decay"] == 0.0
