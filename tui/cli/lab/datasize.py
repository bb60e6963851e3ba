"""`rnn-tui lab datasize`: test perplexity against training characters, the model's and counting's, on both shipped
corpora (engine/lab/datasize.py). Unlike the other lab views it reads no checkpoint: it trains its own models.

Registered by tui.cli.lab.add_lab_parser beside the checkpoint views.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from engine.errors import ConfigError

HELP = (
    "the data-size curve: test perplexity of a model and of the best counting model against training characters, "
    "on the lyrics and The Time Machine (trains its own small runs; cached)"
)


def parse_sizes(text: str) -> tuple[int, ...]:
    """'5000,10000,all' → (5000, 10000, 0)."""
    sizes = []
    for word in text.split(","):
        word = word.strip().replace("_", "")
        if word == "all":
            sizes.append(0)
            continue
        try:
            size = int(word.removesuffix("k")) * (1000 if word.endswith("k") else 1)
        except ValueError:
            raise ConfigError(f"--sizes takes whole numbers (5000, 10k) or all, got {word!r}") from None
        if size < 100:
            raise ConfigError(f"--sizes: each size is at least 100 characters, got {size}")
        sizes.append(size)
    return tuple(sizes)


def add_parser(views: Any, add_setting_argument: Callable[..., None]) -> None:
    from engine.config import SETTINGS
    from engine.lab.datasize import CORPORA, DEFAULT_EPOCHS, DEFAULT_SEED, DEFAULT_SIZES, FAMILIES

    view = views.add_parser("datasize", help=HELP, description=HELP)
    shown = ",".join("all" if not s else f"{s // 1000}k" for s in DEFAULT_SIZES)
    view.add_argument("--sizes", default=shown, help=f"training characters per point, or all (default {shown})")
    view.add_argument("--corpora", default=",".join(CORPORA), help=f"which corpora (default {','.join(CORPORA)})")
    view.add_argument(
        "--preset",
        choices=FAMILIES,
        default="book",
        help="each corpus's model: the book's preset's settings (d2l-zh, d2l-en; default) or the generalising "
        "preset's (whole-zh, whole-en, at their own epochs)",
    )
    view.add_argument("--json", action="store_true", help="print one JSON object: per corpus its points")
    view.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)")
    view.add_argument("--no-cache", action="store_true", help="measure every point again (and cache it anew)")
    group = view.add_argument_group(
        f"the model (each corpus's preset's settings, then these; default {DEFAULT_EPOCHS} epochs, seed {DEFAULT_SEED})"
    )
    for declared in SETTINGS:
        if declared.name not in ("preset", "corpus", "max_chars", "pred_period", "pred_len", "temperature", "prefixes"):
            add_setting_argument(group, declared)
    view.add_argument("--corpus", metavar="PATH", help="the lyrics (default: $RNN_TUI_CORPUS, then data/)")


def run(args: argparse.Namespace) -> int:
    from engine.config import SETTINGS_BY_NAME
    from engine.data.corpus import find_corpus
    from engine.lab.datasize import CORPORA, datasize_curve, default_cache_dir, describe_run

    sizes = parse_sizes(args.sizes)
    corpora = [name.strip() for name in args.corpora.split(",") if name.strip()]
    unknown = [name for name in corpora if name not in CORPORA]
    if unknown or not corpora:
        raise ConfigError(f"--corpora takes {', '.join(CORPORA)}; got {args.corpora!r}")
    overrides = {k: v for k, v in vars(args).items() if k in SETTINGS_BY_NAME and v is not None and k != "corpus"}
    overrides["preset"] = args.preset  # "book" or "whole" (engine.lab.datasize.corpus_config)
    lyrics = find_corpus(args.corpus) if "lyrics" in corpora else None
    cache = None if args.no_cache else default_cache_dir()
    for name in corpora:
        print(f"datasize: {describe_run(name, overrides, sizes)}", file=sys.stderr)

    def progress(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    curves = [datasize_curve(name, overrides, sizes, lyrics, cache, args.threads, progress) for name in corpora]
    if args.json:
        json.dump({curve.corpus: curve.to_json() for curve in curves}, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    for curve in curves:
        print(
            f"{curve.corpus}: test perplexity ({curve.test_chars:,} test characters; counting's n chosen on held-out)"
        )
        print(f"  {'training chars':>14}  {'model':>9}  {'counting':>9}  {'n':>2}  ratio")
        for p in curve.points:
            model = f"{p.model:9.2f}" if p.model is not None else f"{'-':>9}"
            ratio = f"×{p.model / p.counting:.2f}" if p.model is not None else "-"
            cached = "  (cached)" if p.cached else ""
            print(f"  {p.train_chars:>14,}  {model}  {p.counting:9.2f}  {p.counting_order:>2}  {ratio}{cached}")
        print(f"  {curve.trend()}")
    return 0
