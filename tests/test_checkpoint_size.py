"""A checkpoint's size on disk, as engine.limits.checkpoint_bytes foretells it (the command line's --save check, the
app's save into a served session's quota and the memory estimate all use it): checked against real checkpoints, so
the optimizer's state slots per weight (Adam two moments, the book's SGD none) are the ones torch actually saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import OPTIMIZERS, TrainConfig
from engine.data.corpus import Corpus
from engine.limits import CHECKPOINT_ROOM, FLOAT_BYTES, OPTIMIZER_SLOTS, checkpoint_bytes, parameter_count
from engine.trainer import Trainer


def saved_size(corpus: Corpus, corpus_path: Path, tmp_path: Path, optimizer: str) -> tuple[int, TrainConfig]:
    """Train one short epoch (so the optimizer has state) and save: the file's size and the config."""
    config = TrainConfig(
        corpus=str(corpus_path), seed=0, optimizer=optimizer, hidden=128, epochs=1, val_chars=0, pred_period=1000
    )
    trainer = Trainer(config, corpus)
    trainer.run()
    path = tmp_path / f"{optimizer}.ckpt"
    trainer.save(str(path))
    return path.stat().st_size, config


def test_every_optimizer_has_its_slot_count() -> None:
    assert set(OPTIMIZER_SLOTS) == set(OPTIMIZERS)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_checkpoint_bytes_bounds_a_real_checkpoint(
    optimizer: str, corpus: Corpus, corpus_path: Path, tmp_path: Path
) -> None:
    size, config = saved_size(corpus, corpus_path, tmp_path, optimizer)
    foretold = checkpoint_bytes(config, len(corpus.vocab))
    assert foretold - CHECKPOINT_ROOM <= size <= foretold, (size, foretold)


def test_adam_saves_two_moments_a_weight_and_sgd_none(corpus: Corpus, corpus_path: Path, tmp_path: Path) -> None:
    adam, config = saved_size(corpus, corpus_path, tmp_path, "adam")
    sgd, _ = saved_size(corpus, corpus_path, tmp_path, "sgd")
    weights = parameter_count(config.cell, len(corpus.vocab), config.hidden, config.layers) * FLOAT_BYTES
    extra = (adam - sgd) / weights  # tensors the size of the weights that Adam's checkpoint holds beyond SGD's
    assert extra == pytest.approx(OPTIMIZER_SLOTS["adam"] - OPTIMIZER_SLOTS["sgd"], abs=0.05), extra
    assert sgd == pytest.approx(weights * (1 + OPTIMIZER_SLOTS["sgd"]), rel=0.2), (sgd, weights)


@pytest.mark.parametrize(
    ("cell", "layers", "embed", "tie"),
    [("rnn", 1, 0, "off"), ("gru", 2, 16, "off"), ("lstm", 1, 16, "on"), ("lstm", 2, 0, "on"), ("rnn", 1, 24, "on")],
)
def test_the_parameter_count_is_the_real_models(cell: str, layers: int, embed: int, tie: str) -> None:
    """The estimate counts what the model holds: an embedding (--embed, or one as wide as the hidden state when
    tied without it), the tied output layer's projection when the widths differ, each weight once."""
    from engine.limits import config_parameter_count
    from engine.model import model_for

    config = TrainConfig(cell=cell, hidden=24, layers=layers, embed=embed, tie=tie)
    model = model_for(config, 97)
    assert config_parameter_count(config, 97) == sum(p.numel() for p in model.parameters())
