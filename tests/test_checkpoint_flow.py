"""ctrl+o → Continue's decision of how far a checkpoint trains (tui.app.checkpoint_flow), without torch or an app."""

from __future__ import annotations

from tui.app.checkpoint_flow import plan_continue


def test_the_forms_epochs_win_when_they_go_further() -> None:
    plan = plan_continue("book.ckpt", "epoch 20", 20, 30, 50, {"corpus": "x.zip"})
    assert plan.overrides == {"corpus": "x.zip", "epochs": 50}
    assert plan.note == "continuing book.ckpt from epoch 20 to 50 (epochs from the settings form)"


def test_a_form_that_would_train_backwards_is_set_aside_for_the_checkpoints_own_epochs() -> None:
    plan = plan_continue("book.ckpt", "batch 3 of 8 of epoch 21", 20, 30, 10, {})
    assert plan.overrides == {}  # the checkpoint's own 30 epochs stay
    assert "to its own 30" in plan.note and "the form's epochs (10) is not above 20" in plan.note


def test_an_invalid_form_value_counts_as_none() -> None:
    plan = plan_continue("book.ckpt", "epoch 20", 20, 30, None, {})
    assert plan.overrides == {} and "to its own 30" in plan.note


def test_a_checkpoint_with_nothing_left_says_how_to_go_further() -> None:
    plan = plan_continue("done.ckpt", "epoch 250", 250, 250, 250, {})
    assert plan.overrides == {}
    assert plan.note.startswith("done.ckpt has trained all its 250 epochs: set epochs above 250")
