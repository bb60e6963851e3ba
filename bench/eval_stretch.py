"""A checkpoint's held-out and test perplexity read in stretches of several lengths, each from a zero state
(--eval-stretch, engine/evaluate.py), beside the counting model's on the same targets.

    python bench/eval_stretch.py CKPT                 # stretches 64, 256, 1000, 4000
    python bench/eval_stretch.py CKPT 35 1000         # the stretches given
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from engine.config import stream_length
from engine.evaluate import Evaluator
from engine.lab.subject import load_subject
from engine.lab.verdict import counting_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("stretches", nargs="*", type=int, default=[64, 256, 1000, 4000])
    parser.add_argument("--corpus", help="the text the checkpoint trained on, when not where it was")
    args = parser.parse_args()
    torch.set_num_threads(1)
    subject = load_subject(args.checkpoint, args.corpus)
    corpus, cpu = subject.corpus, torch.device("cpu")
    print("stretch  held-out      test  counting held-out / test")
    for stretch in args.stretches:
        config = dataclasses.replace(subject.config, eval_stretch=stretch)
        held = Evaluator(config, corpus, cpu)(subject.model).held_out.perplexity
        test = Evaluator(config, dataclasses.replace(corpus, held_out=corpus.test), cpu)(subject.model).held_out
        table = counting_table(corpus, stream_length(config))
        counted = ""
        if table is not None:
            order, held_counting = table.best()
            chosen = table.best_test()
            counted = (
                f"{order}-gram {held_counting:.3f} / {chosen[1]:.3f}" if chosen else f"{order}-gram {held_counting:.3f}"
            )
        print(f"{stretch:7,}  {held:8.4f}  {test.perplexity:8.4f}  {counted}", flush=True)


if __name__ == "__main__":
    main()
