"""`rnn-tui generate`: text from a checkpoint, greedy or sampled, each character's candidates with --explain."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.config import check_seed


def add_generate_parser(commands: Any) -> None:
    gen = commands.add_parser("generate", help="generate text from a checkpoint")
    gen.add_argument("--checkpoint", required=True, metavar="CKPT")
    gen.add_argument(
        "--prefix",
        action="append",
        dest="prefixes",
        metavar="TEXT",
        help="repeatable (default: the checkpoint's prefixes)",
    )
    gen.add_argument(
        "--len", type=int, default=50, dest="length", metavar="N", help="characters to generate (default 50)"
    )
    gen.add_argument("--temperature", type=float, metavar="T", help="sample with temperature T > 0 (default: greedy)")
    gen.add_argument("--top-k", type=int, metavar="K", help="sample only among the K most likely characters")
    gen.add_argument("--seed", type=int, metavar="N")
    gen.add_argument(
        "--explain", type=int, metavar="K", help="print the top K candidates for every generated character"
    )


def run_generate(args: argparse.Namespace) -> int:

    from engine import checkpoint as checkpoints
    from engine.data.convert import resolve_prefix
    from engine.generate import capped_length, check_generation_settings, fresh_generator, generate

    args.length, cap_note = capped_length(args.length)
    if cap_note:
        print(cap_note, file=sys.stderr)
    check_generation_settings(args.length, args.temperature, args.top_k)
    check_seed(args.seed)
    loaded = checkpoints.load(args.checkpoint)
    model = loaded.build_model()
    generator = fresh_generator(args.seed) if args.seed is not None else None
    prefixes = args.prefixes or list(loaded.config.prefixes)
    resolved = []
    for prefix in prefixes:
        text, note = resolve_prefix(prefix, loaded.vocab.idx_to_char)
        if note:
            print(note, file=sys.stderr)
        resolved.append(text)
    for prefix in resolved:
        if args.explain is not None:  # --explain 0 is refused by explain_generation, not ignored
            from engine.explain import explain_generation, format_explanation

            steps = explain_generation(
                model, loaded.vocab, prefix, args.length, args.temperature, args.top_k, args.explain, generator
            )
            print(format_explanation(prefix, steps))
        else:
            print(generate(model, loaded.vocab, prefix, args.length, args.temperature, args.top_k, generator))
    return 0
