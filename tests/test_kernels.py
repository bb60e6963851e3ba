"""The hand-written BPTT of engine.kernels.py against autograd: every gradient, every cell."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.kernels import GRURecurrence, LinearCrossEntropy, LSTMRecurrence, TanhRecurrence
from engine.model import CharRNN, State, Stepper


def test_functions_pass_gradcheck() -> None:
    torch.manual_seed(0)
    steps, batch, hidden = 4, 3, 5

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.double, requires_grad=True)

    assert torch.autograd.gradcheck(
        TanhRecurrence.apply, (rand(steps, batch, hidden), rand(batch, hidden), rand(hidden, hidden))
    )
    assert torch.autograd.gradcheck(
        GRURecurrence.apply,
        (rand(steps, batch, 3 * hidden), rand(batch, hidden), rand(3 * hidden, hidden), rand(3 * hidden)),
    )
    assert torch.autograd.gradcheck(
        LSTMRecurrence.apply,
        (rand(steps, batch, 4 * hidden), rand(batch, hidden), rand(batch, hidden), rand(4 * hidden, hidden)),
    )


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_all_gradients_equal_the_torch_layer_fed_one_hot(cell: str) -> None:
    torch.manual_seed(1)
    model = CharRNN(vocab_size=60, cell=cell, hidden=16, layers=2).double()
    inputs = torch.randint(0, 60, (7, 3))
    state = model.init_state(3)
    if isinstance(state, tuple):
        h, c = (s.double().normal_().requires_grad_() for s in state)
        state = (h, c)
    else:
        state = state.double().normal_().requires_grad_()
    states = list(state) if isinstance(state, tuple) else [state]
    weights = torch.randn(7, 3, 16, dtype=torch.double)  # a loss that weighs every output differently

    def grads(outputs: torch.Tensor, final: State) -> list[torch.Tensor]:
        finals = list(final) if isinstance(final, tuple) else [final]
        loss = (outputs * weights).sum() + sum((f * (k + 2)).sum() for k, f in enumerate(finals))
        return list(torch.autograd.grad(loss, [*model.rnn.parameters(), *states]))

    ours = grads(*model.recurrent(inputs, state))
    theirs = grads(*model.rnn(F.one_hot(inputs, 60).double(), state))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_fused_loss_equals_dense_then_cross_entropy(cell: str) -> None:
    torch.manual_seed(2)
    model = CharRNN(vocab_size=97, cell=cell, hidden=12).double()
    inputs, targets = torch.randint(0, 97, (9, 4)), torch.randint(0, 97, (9, 4))

    state = model.init_state(4)
    state = (state[0].double(), state[1].double()) if isinstance(state, tuple) else state.double()
    ours, _ = model.loss(inputs, targets, state)
    our_grads = torch.autograd.grad(ours, list(model.parameters()))
    logits, _ = model(inputs, state)
    theirs = F.cross_entropy(logits, targets.reshape(-1))
    their_grads = torch.autograd.grad(theirs, list(model.parameters()))
    torch.testing.assert_close(ours, theirs)
    for a, b in zip(our_grads, their_grads, strict=True):
        torch.testing.assert_close(a, b)
    hidden = torch.randn(5, 3, dtype=torch.double, requires_grad=True)
    weight = torch.randn(7, 3, dtype=torch.double, requires_grad=True)
    bias = torch.randn(7, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(LinearCrossEntropy.apply, (hidden, weight, bias, torch.tensor([0, 6, 2, 2, 5])))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_stepper_equals_forward_one_character_at_a_time(cell: str) -> None:
    torch.manual_seed(3)
    model = CharRNN(vocab_size=40, cell=cell, hidden=16, layers=2).eval()
    inputs = torch.randint(0, 40, (6, 1))
    with torch.inference_mode():
        logits, state = model(inputs[:2])
        step_once = Stepper(model, state)
        for t in range(2, 6):
            logits, state = model(inputs[t : t + 1], state)
            torch.testing.assert_close(step_once(int(inputs[t, 0])), logits[-1])


def test_bf16_output_layer_is_the_float64_one_within_bfloat16_rounding() -> None:
    """--precision bf16: the three products run on bfloat16 operands (8 bits of mantissa), everything else in float32;
    the loss and all three gradients stay float32 and within bfloat16's rounding of the exact (float64) ones."""
    torch.manual_seed(4)
    rows, hidden_size, vocab = 70, 48, 300  # a vocabulary wider than the hidden layer, as the book's
    hidden = torch.randn(rows, hidden_size, dtype=torch.double)
    weight = torch.randn(vocab, hidden_size, dtype=torch.double) * 0.3
    bias = torch.randn(vocab, dtype=torch.double)
    targets = torch.randint(0, vocab, (rows,))

    def loss_and_grads(dtype: torch.dtype, low: torch.dtype | None) -> list[torch.Tensor]:
        leaves = [t.to(dtype).requires_grad_() for t in (hidden, weight, bias)]
        loss = LinearCrossEntropy.apply(*leaves, targets, low)
        return [loss, *torch.autograd.grad(loss, leaves)]

    exact = loss_and_grads(torch.double, None)
    fp32 = loss_and_grads(torch.float32, None)
    bf16 = loss_and_grads(torch.float32, torch.bfloat16)
    for ours, reference in zip(bf16, exact, strict=True):
        assert ours.dtype == torch.float32
        scale = reference.abs().max()
        assert ((ours.double() - reference).abs().max() / scale) < 2e-2  # bfloat16's step is 2^-8 ≈ 0.4 %
    # and it is really another arithmetic than float32's (which is exact to ~1e-7 here)
    assert (fp32[2].double() - exact[2]).abs().max() < 1e-5 < (bf16[2].double() - exact[2]).abs().max()
