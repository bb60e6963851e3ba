"""The learning rate over a run (--schedule): a multiple of --lr, computed from where the run stands.

constant: --lr throughout (the book's). cosine: from --lr at the first batch down towards 0 at the last of --epochs,
batch by batch (Loshchilov & Hutter's SGDR without restarts). plateau: --lr halved each time held-out perplexity has
not improved on its best for PLATEAU_PATIENCE epochs (torch's ReduceLROnPlateau, factor 0.5, patience 1).

Both are functions of the run's position and its history of epochs: the schedule's state is what a checkpoint already
carries (the epoch, the batches of the next one trained, each epoch's held-out perplexity), so a resumed run takes
the same rates as an unbroken one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from engine.events import EpochEnd

PLATEAU_FACTOR = 0.5  # the rate's multiple at each plateau
PLATEAU_PATIENCE = 1  # epochs without a new best held-out perplexity before the rate is cut


def plateau_factor(history: Sequence[EpochEnd]) -> float:
    """The multiple of --lr after these epochs: PLATEAU_FACTOR per plateau (epochs without a new best held-out)."""
    factor, best, waited = 1.0, math.inf, 0
    for epoch in history:
        if epoch.val_perplexity is None:
            continue
        if epoch.val_perplexity < best:
            best, waited = epoch.val_perplexity, 0
            continue
        waited += 1
        if waited >= PLATEAU_PATIENCE:
            factor *= PLATEAU_FACTOR
            waited = 0
    return factor


def cosine_factor(step: int, total_steps: int) -> float:
    """The multiple of --lr at batch step (0-based) of total_steps: 1 at the first, towards 0 at the last."""
    if total_steps <= 0:
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


def factor(schedule: str, history: Sequence[EpochEnd], step: int, total_steps: int) -> float:
    """The multiple of --lr for the batch at step (0-based, of the whole run) after the epochs in history."""
    if schedule == "plateau":
        return plateau_factor(history)
    if schedule == "cosine":
        return cosine_factor(step, total_steps)
    return 1.0
