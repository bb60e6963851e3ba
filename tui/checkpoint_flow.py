"""ctrl+o → Continue: how far a loaded checkpoint trains, decided from the checkpoint and the settings form.

A pure function, so the decision is tested without torch, a checkpoint file or an app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ContinuePlan:
    overrides: dict[str, Any]  # the session's overrides: epochs added when the form's are the target
    note: str  # told to the user once the resumed session is open


def plan_continue(
    name: str, position: str, trained: int, own_epochs: int, form_epochs: int | None, overrides: dict[str, Any]
) -> ContinuePlan:
    """The form's epochs say how far to train; a checkpoint cannot train backwards, so a smaller one is set aside
    for the checkpoint's own epochs, and a checkpoint with nothing left to train says how to go further.

    name: the checkpoint's file name; position: where it stands ("epoch 12 + 3 of 8 batches"); trained: its
    finished epochs; own_epochs: the epochs its settings asked for; form_epochs: the form's (None when invalid).
    """
    if form_epochs is not None and form_epochs > trained:
        return ContinuePlan(
            {**overrides, "epochs": form_epochs},
            f"continuing {name} from {position} to {form_epochs} (epochs from the settings form)",
        )
    if own_epochs > trained:
        return ContinuePlan(
            overrides,
            f"continuing {name} from {position} to its own {own_epochs}: "
            f"the form's epochs ({form_epochs}) is not above {trained}",
        )
    return ContinuePlan(
        overrides,
        f"{name} has trained all its {trained} epochs: set epochs above {trained} in the settings form, "
        "then ctrl+o → Continue again to train further",
    )
