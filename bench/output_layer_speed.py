"""The output layer (engine/kernels.py LinearCrossEntropy, forward and backward) in fp32, in bf16, and in bf16 with
one product kept in fp32, at the book's sizes (vocabulary 1,027, hidden 256, 35 × 32 rows), on one thread:

    python bench/output_layer_speed.py [--rounds 15]

The variants take turns, each round running every one once, and each one's best round is kept, so a busy moment of
a shared machine falls on all of them; the ratios are the figures to read. Needs native bfloat16 to mean anything
(elsewhere torch converts in software).
"""

from __future__ import annotations

import argparse
import time

import torch

from engine.kernels import LinearCrossEntropy

VARIANTS: dict[str, tuple[torch.dtype | None, frozenset[str]]] = {
    "fp32": (None, frozenset()),
    "bf16": (torch.bfloat16, frozenset()),
    "bf16, grad_hidden in fp32": (torch.bfloat16, frozenset({"grad_hidden"})),
    "bf16, grad_weight in fp32": (torch.bfloat16, frozenset({"grad_weight"})),
    "bf16, logits in fp32": (torch.bfloat16, frozenset({"logits"})),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    draws = torch.Generator().manual_seed(0)
    vocab, hidden, rows = 1027, 256, 35 * 32
    states = torch.randn(rows, hidden, generator=draws).requires_grad_()
    weight = (torch.randn(vocab, hidden, generator=draws) * 0.1).requires_grad_()
    bias = torch.zeros(vocab, requires_grad=True)
    targets = torch.randint(0, vocab, (rows,), generator=draws)
    best = dict.fromkeys(VARIANTS, float("inf"))
    for round_ in range(args.rounds + 1):
        for name, (low, keep) in VARIANTS.items():
            started = time.perf_counter()
            loss = LinearCrossEntropy.apply(states, weight, bias, targets, low, keep)
            torch.autograd.grad(loss, (states, weight, bias))
            if round_:  # the first round warms up
                best[name] = min(best[name], time.perf_counter() - started)
    for name, seconds in best.items():
        print(f"{name:<26} {seconds * 1e3:6.1f} ms  {best['fp32'] / seconds:.2f}× as fast as fp32")


if __name__ == "__main__":
    main()
