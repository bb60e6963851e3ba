"""engine.optim against torch.optim: the same weights bit for bit, the same state_dict, and no torch._dynamo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.config import TrainConfig
from engine.data.corpus import Corpus
from engine.model import CharRNN
from engine.optim import SGD, Adam, Optimizer

ROOT = Path(__file__).resolve().parents[1]


def batches(corpus: Corpus, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    data = torch.tensor(corpus.indices[: count * 35 * 8 + 1])
    return [
        (data[i * 280 : (i + 1) * 280].view(35, 8), data[i * 280 + 1 : (i + 1) * 280 + 1].view(35, 8))
        for i in range(count)
    ]


def train(
    model: CharRNN, optimizer: Optimizer | torch.optim.Optimizer, data: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    for inputs, targets in data:
        loss, _ = model.loss(inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def twin_models(corpus: Corpus) -> tuple[CharRNN, CharRNN]:
    torch.manual_seed(3)
    ours = CharRNN(len(corpus.vocab), "rnn", hidden=32)
    theirs = CharRNN(len(corpus.vocab), "rnn", hidden=32)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def assert_same_weights(a: CharRNN, b: CharRNN) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("name", ["adam", "sgd"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_steps_equal_torch_optim_bit_for_bit(corpus: Corpus, name: str, weight_decay: float) -> None:
    """With --weight-decay as torch.optim's weight_decay; 0 against torch.optim's default (the engine before it)."""
    ours, theirs = twin_models(corpus)
    optimizers: tuple[Optimizer, torch.optim.Optimizer]
    if name == "adam":
        optimizers = (
            Adam(list(ours.parameters()), lr=0.01, weight_decay=weight_decay),
            torch.optim.Adam(theirs.parameters(), lr=0.01, fused=True, weight_decay=weight_decay),
        )
    else:
        optimizers = (
            SGD(list(ours.parameters()), lr=0.5, weight_decay=weight_decay),
            torch.optim.SGD(theirs.parameters(), lr=0.5, weight_decay=weight_decay),
        )
    data = batches(corpus, 6)
    train(ours, optimizers[0], data)
    train(theirs, optimizers[1], data)
    assert_same_weights(ours, theirs)
    assert not torch.equal(ours.dense.weight, twin_models(corpus)[0].dense.weight)  # it did train


def test_state_dicts_load_either_way(corpus: Corpus) -> None:
    """Checkpoints written with torch.optim.Adam (sessions before engine.optim) resume with engine.optim, and back."""
    data = batches(corpus, 8)
    ours, theirs = twin_models(corpus)
    our_adam, their_adam = (
        Adam(list(ours.parameters()), lr=0.01),
        torch.optim.Adam(theirs.parameters(), lr=0.01, fused=True),
    )
    train(ours, our_adam, data[:4])
    train(theirs, their_adam, data[:4])
    saved_ours, saved_theirs = our_adam.state_dict(), their_adam.state_dict()
    assert saved_ours["param_groups"] == saved_theirs["param_groups"]
    assert saved_ours["state"].keys() == saved_theirs["state"].keys()

    swapped_ours, swapped_theirs = (
        Adam(list(ours.parameters()), lr=0.01),
        torch.optim.Adam(theirs.parameters(), lr=0.01, fused=True),
    )
    swapped_ours.load_state_dict(saved_theirs)
    swapped_theirs.load_state_dict(saved_ours)
    train(ours, swapped_ours, data[4:])
    train(theirs, swapped_theirs, data[4:])
    assert_same_weights(ours, theirs)


def test_state_saved_for_a_row_major_w_ih_still_steps_right(corpus: Corpus) -> None:
    """Before session 3, W_ih (and so its Adam state) was row-major; the fused kernel needs state laid out like its
    parameter, or it updates the wrong elements (torch.optim.Adam's load_state_dict keeps the saved layout)."""
    data = batches(corpus, 6)
    ours, reference = twin_models(corpus)
    our_adam, reference_adam = Adam(list(ours.parameters()), lr=0.01), torch.optim.Adam(reference.parameters(), lr=0.01)
    train(ours, our_adam, data[:3])
    train(reference, reference_adam, data[:3])
    saved = our_adam.state_dict()
    for state in saved["state"].values():  # as an older checkpoint holds it: every tensor row-major
        state.update({k: v.contiguous() for k, v in state.items()})
    assert saved["state"][0]["exp_avg"].stride() != ours.layer_weights(0).w_ih.stride()
    resumed = Adam(list(ours.parameters()), lr=0.01)
    resumed.load_state_dict(saved)
    train(ours, resumed, data[3:])
    train(reference, reference_adam, data[3:])  # torch's unfused Adam: layout-independent, the ground truth
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_training_never_imports_torch_dynamo(corpus_path: Path) -> None:
    """torch.optim imports torch._dynamo (seconds) when an optimizer is built or stepped; the engine's do not."""
    script = f"""
import sys
from pathlib import Path
from engine.config import TrainConfig
from engine.data.corpus import load_corpus
from engine.trainer import Trainer
for optimizer in ("adam", "sgd"):
    config = TrainConfig(epochs=1, hidden=16, optimizer=optimizer, clip=0.01, pred_period=1, pred_len=5)
    Trainer(config, load_corpus(Path({str(corpus_path)!r}), 2000)).run()
print("torch._dynamo" in sys.modules)
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_trainer_uses_them(corpus: Corpus) -> None:
    from engine.trainer import Trainer

    for name, kind in (("adam", Adam), ("sgd", SGD)):
        assert isinstance(Trainer(TrainConfig(optimizer=name, hidden=16), corpus).optimizer, kind)
