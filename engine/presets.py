"""The presets: the book's two runs (the Chinese edition's, the default, and the English edition's) and the runs that
generalise, each a set of settings by name (engine.config.preset_config applies one). No torch, no front end."""

from __future__ import annotations

from typing import Any

# The Chinese edition's §6.5 run (the default) and the English edition's; then the presets that generalise, found by
# the project's own sweep (docs/regularisation.md): each reads its corpus as the book's run on it does (PRESET_READS).
PRESETS = ("d2l-zh", "d2l-en", "whole-en", "whole-zh")
PRESET_READS = {"d2l-zh": "d2l-zh", "d2l-en": "d2l-en", "whole-en": "d2l-en", "whole-zh": "d2l-zh"}
BOOK_PREFIXES = ("分开", "不分开")


def reads_as(preset: str) -> str:
    """Which book's reading of the corpus a preset takes: d2l-en (The Time Machine, letters only) or d2l-zh."""
    return PRESET_READS.get(preset, preset)


# What each preset sets. Choosing a preset applies these; a setting given explicitly (a flag, a form value)
# wins over its preset's. The d2l-zh values are TrainConfig's defaults; d2l-en is the English edition's run
# (../shared/seed/d2l-en.md): The Time Machine, letters only, overlapping windows, SGD lr 1 clipped at 1.
PRESET_SETTINGS: dict[str, dict[str, Any]] = {
    "d2l-zh": {
        "max_chars": 10_000,
        "val_chars": 1_500,
        "sampling": "consecutive",
        "state": "carry",
        "hidden": 256,
        "optimizer": "adam",
        "lr": 1e-3,
        "clip": 0.01,
        "epochs": 250,
        "batch_size": 32,
        "num_steps": 35,
        "pred_period": 50,
        "pred_len": 50,
        "prefixes": BOOK_PREFIXES,
    },
    "d2l-en": {
        "max_chars": 10_000,
        "val_chars": 5_000,
        "sampling": "windows",
        "state": "batch",
        "hidden": 32,
        "optimizer": "sgd",
        "lr": 1.0,
        "clip": 1.0,
        "epochs": 100,
        "batch_size": 1024,
        "num_steps": 32,
        "pred_period": 100,
        "pred_len": 20,
        "prefixes": ("it has",),
    },
    # The whole Time Machine, read as d2l-en reads it, the last tenth held out: sweep whole-en-6's best trial (an LSTM
    # 384 with a 256-wide embedding tied to its output layer, heavy io dropout, a cosine schedule over 30 epochs),
    # rounded; held-out and test read in stretches of 1,000 (docs/regularisation.md).
    "whole-en": {
        "max_chars": 0,
        "sampling": "random",
        "state": "batch",
        "cell": "lstm",
        "hidden": 384,
        "embed": 256,
        "tie": "on",
        "io_dropout": 0.51,
        "optimizer": "adam",
        "lr": 6e-3,
        "clip": 1.0,
        "schedule": "cosine",
        "epochs": 30,
        "patience": 4,
        "batch_size": 32,
        "num_steps": 64,
        "eval_stretch": 1_000,
        "pred_period": 5,
        "pred_len": 50,
        "prefixes": ("the time traveller",),
    },
    # The whole lyrics, read as d2l-zh reads them, the last tenth held out: sweep whole-zh-1's best trial (an LSTM
    # with a 256-wide embedding tied to its output layer, heavy io dropout), rounded (docs/regularisation.md).
    "whole-zh": {
        "max_chars": 0,
        "sampling": "random",
        "state": "batch",
        "cell": "lstm",
        "hidden": 256,
        "embed": 256,
        "tie": "on",
        "io_dropout": 0.51,
        "optimizer": "adam",
        "lr": 3.4e-3,
        "clip": 1.0,
        "schedule": "cosine",
        "epochs": 25,
        "patience": 3,
        "batch_size": 32,
        "num_steps": 35,
        "eval_stretch": 1_000,
        "pred_period": 5,
        "pred_len": 50,
        "prefixes": BOOK_PREFIXES,
    },
}
