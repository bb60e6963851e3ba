"""Gradient norms and clipping, every step (issue 22, item 1), on the real corpus with small models."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from test_trainer import resume, train_acting_at
from test_trainer import train as train_trainer

from engine import checkpoint as checkpoints
from engine import events
from engine.config import TrainConfig
from engine.data.corpus import Corpus
from engine.session import open_session
from engine.trainer import Trainer
from tui.main import main

# The book's settings (Adam, clip 0.01) on a small model: 3 batches per epoch of the lyrics.
SMALL = {"hidden": 32, "max_chars": 4_000, "val_chars": 300, "epochs": 3, "seed": 0, "pred_period": 10**6}


def actual_norm(parameters: list[torch.Tensor]) -> float:
    """The global L2 norm of the gradients as they are now, in float64."""
    return math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in parameters if p.grad is not None))


def train(corpus_path: Path, **overrides: Any) -> tuple[Any, list[events.Event], list[float]]:
    """Train; return the trainer, its events and the gradients' norm the optimizer actually stepped with each time."""
    seen: list[events.Event] = []
    session = open_session({**SMALL, "corpus": str(corpus_path), **overrides}, listener=seen.append)
    trainer = session.trainer
    stepped: list[float] = []
    optimizer_step = trainer.optimizer.step

    def measured_step() -> None:  # what reaches the weights, measured independently of the trainer's own record
        stepped.append(actual_norm(list(trainer.model.parameters())))
        optimizer_step()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer.optimizer, "step", measured_step)
        trainer.run()
    return trainer, seen, stepped


def epochs_of(seen: list[events.Event]) -> list[events.EpochEnd]:
    return [e for e in seen if isinstance(e, events.EpochEnd)]


def test_the_books_clip_scales_down_nearly_every_step_and_never_lets_more_through(corpus_path: Path) -> None:
    trainer, seen, stepped = train(corpus_path)
    epochs = epochs_of(seen)
    assert len(epochs) == 3 and all(e.clipped_share is not None and e.clipped_share > 0.9 for e in epochs)
    steps = trainer.grad_norms.since(0)
    assert len(steps) == len(stepped) == 3 * trainer.batches_per_epoch
    assert [s.step for s in steps] == list(range(1, len(steps) + 1))
    theta = 0.01
    assert all(norm <= theta * (1 + 1e-6) for norm in stepped)  # the gradients the optimizer really used
    assert all(s.after <= theta * (1 + 1e-6) for s in steps)
    assert [s.after for s in steps] == pytest.approx(stepped, rel=1e-4)  # the trainer's record is what was used
    # The epoch's figures are its steps' own: mean and max before clipping, share clipped.
    first = [s for s in steps if s.epoch == 1]
    assert epochs[0].grad_norm == pytest.approx(sum(s.before for s in first) / len(first))
    assert epochs[0].grad_norm_max == max(s.before for s in first)
    assert epochs[0].clipped_share == sum(s.clipped for s in first) / len(first)
    assert all(s.before > 10 * theta for s in steps)  # far above θ: the book's clip is a constant step size


def test_clip_0_clips_nothing_but_the_norm_is_measured(corpus_path: Path) -> None:
    trainer, seen, stepped = train(corpus_path, clip=0.0)
    epochs = epochs_of(seen)
    assert [e.clipped_share for e in epochs] == [0.0, 0.0, 0.0]
    steps = trainer.grad_norms.since(0)
    assert all(not s.clipped and s.after == s.before for s in steps)
    assert [s.before for s in steps] == pytest.approx(stepped, rel=1e-4)  # unclipped: the norm the optimizer used
    assert all(e.grad_norm is not None and e.grad_norm > 0 for e in epochs)


def test_the_metrics_record_and_the_held_out_line_carry_the_clipping(
    corpus_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "m.jsonl"
    argv = ["train", "--headless", "--corpus", str(corpus_path), "--metrics", str(metrics), "--pred-period", "1"]
    argv += ["--hidden", "32", "--max-chars", "4000", "--val-chars", "300", "--epochs", "2", "--seed", "0"]
    assert main(argv) == 0
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        assert record["clipped_share"] == 1.0 and 0 < record["grad_norm"] <= record["grad_norm_max"]
    held_out = [line for line in capsys.readouterr().out.splitlines() if line.startswith("held-out perplexity")]
    assert len(held_out) == 2 and all(line.endswith("; clipped 100.0% of steps") for line in held_out)
    # Without held-out evaluation the norms and the share have a line of their own.
    argv = ["train", "--headless", "--corpus", str(corpus_path), "--pred-period", "1", "--clip", "0"]
    assert main([*argv, "--hidden", "32", "--max-chars", "4000", "--val-chars", "0", "--epochs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("gradient norm ") and lines[1].endswith("before clipping; clip off"), lines


def test_a_checkpoint_from_before_the_gradient_figures_still_loads_and_resumes(
    corpus_path: Path, tmp_path: Path
) -> None:
    path = tmp_path / "old.ckpt"
    trainer, _, _ = train(corpus_path, epochs=1)
    trainer.save(str(path))
    payload = torch.load(path, weights_only=False)
    for record in payload["history"]:  # as a checkpoint written before the fields existed has it
        for name in ("grad_norm", "grad_norm_max", "clipped_share"):
            del record[name]
    torch.save(payload, path)
    old = checkpoints.load(path)
    assert old.history[0].grad_norm is None and old.history[0].gradient_line() is None
    assert "clipped" not in (old.history[0].held_out_line() or "")
    seen: list[events.Event] = []
    session = open_session({"epochs": 2}, resume=str(path), listener=seen.append)
    session.trainer.run()
    resumed = epochs_of(seen)
    assert [e.epoch for e in resumed] == [2] and resumed[0].clipped_share == 1.0


def test_a_non_finite_gradient_stops_training_before_the_step_and_names_it(corpus_path: Path) -> None:
    seen: list[events.Event] = []
    session = open_session({**SMALL, "corpus": str(corpus_path)}, listener=seen.append)
    trainer = session.trainer
    calls = 0

    def poison(grad: torch.Tensor) -> torch.Tensor:  # the 5th backward pass overflows (epoch 2, batch 2)
        nonlocal calls
        calls += 1
        return grad * math.inf if calls == 5 else grad

    trainer.model.dense.weight.register_hook(poison)
    weights: list[torch.Tensor] = []
    optimizer_step = trainer.optimizer.step

    def step_and_keep() -> None:
        optimizer_step()
        weights[:] = [p.detach().clone() for p in trainer.model.parameters()]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer.optimizer, "step", step_and_keep)
        trainer.run()
    failed = [e for e in seen if isinstance(e, events.Failed)]
    assert len(failed) == 1 and (failed[0].epoch, failed[0].batch, failed[0].step) == (2, 2, 5)
    assert "(step 5): gradient norm inf" in failed[0].message and "the step before" in failed[0].message
    after_four_steps = zip(weights, trainer.model.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in after_four_steps)  # the 5th step never reached the weights


def test_a_diverging_loss_names_its_step(corpus_path: Path) -> None:
    seen: list[events.Event] = []
    overrides = {**SMALL, "corpus": str(corpus_path), "optimizer": "sgd", "lr": 1e4, "clip": 0.0, "epochs": 5}
    open_session(overrides, listener=seen.append).trainer.run()
    failed = [e for e in seen if isinstance(e, events.Failed)]
    assert len(failed) == 1 and failed[0].step > 1
    assert f"(step {failed[0].step}): loss" in failed[0].message


def test_an_epoch_resumed_from_its_middle_has_the_whole_epochs_gradient_figures(
    book_config: TrainConfig, corpus: Corpus, tmp_path: Path
) -> None:
    config = book_config.with_changes(epochs=2, hidden=32, val_chars=0)
    straight = [gradient_figures(e) for e in train_trainer(config, corpus)[0].state.history]

    first, _ = train_acting_at(config, corpus, (2, 3), Trainer.stop)
    first.save(str(tmp_path / "mid.ckpt"))
    resumed, _ = resume(checkpoints.load(tmp_path / "mid.ckpt"), corpus)
    assert [gradient_figures(e) for e in resumed.state.history] == straight  # batches 1-3 counted from the checkpoint
    assert len(resumed.grad_norms.since(0)) == 5  # this trainer's own steps: 4 to 8 of epoch 2

    # A mid-epoch checkpoint from before the figures were kept resumes too; its epoch counts the batches after it.
    payload = torch.load(tmp_path / "mid.ckpt", weights_only=False)
    for name in ("grad_sum", "grad_max", "clipped", "steps"):
        del payload["progress"][name]
    torch.save(payload, tmp_path / "old.ckpt")
    old, _ = resume(checkpoints.load(tmp_path / "old.ckpt"), corpus)
    steps = [s.before for s in old.grad_norms.since(0)]
    assert old.state.history[-1].grad_norm == pytest.approx(sum(steps) / 5) and old.state.history[-1].clipped_share == 1


def gradient_figures(epoch: events.EpochEnd) -> tuple[float | None, float | None, float | None]:
    return epoch.grad_norm, epoch.grad_norm_max, epoch.clipped_share
