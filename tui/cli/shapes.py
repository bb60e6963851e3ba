"""`rnn-tui shapes`: the shapes the recurrent layer returns, the book's demo, from the sizes alone."""

from __future__ import annotations

import argparse
from typing import Any

from engine.config import CELLS
from engine.errors import ConfigError


def add_shapes_parser(commands: Any) -> None:
    shapes = commands.add_parser("shapes", help="print the shapes the recurrent layer returns (the book's demo)")
    shapes.add_argument("--cell", choices=CELLS, default="rnn")
    shapes.add_argument("--num-steps", type=int, default=35, metavar="N")
    shapes.add_argument("--batch-size", type=int, default=2, metavar="N")
    shapes.add_argument("--hidden", type=int, default=256, metavar="N")
    shapes.add_argument("--layers", type=int, default=1, metavar="N")
    shapes.add_argument("--vocab-size", type=int, default=1027, metavar="N", help="(default 1027, the book's)")


def run_shapes(args: argparse.Namespace) -> int:
    for name in ("num_steps", "batch_size", "hidden", "layers", "vocab_size"):
        value = getattr(args, name)
        if value < 1:
            raise ConfigError(f"{name.replace('_', '-')} must be a whole number ≥ 1, got {value}")
    from engine.shapes import layer_shapes

    report = layer_shapes(args.cell, args.vocab_size, args.hidden, args.layers, args.num_steps, args.batch_size)
    print(report.book_line)
    width = max(len(t.name) for t in report.tensors)
    for tensor in report.tensors:
        shape = "(" + ", ".join(str(n) for n in tensor.shape) + ")"
        print(f"  {tensor.name:<{width}}  {shape:<16}  {tensor.meaning}")
    return 0
