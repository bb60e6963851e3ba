"""What a sweep's trials give back to the app: the best trial's settings into the form (Apply best; F7 then trains
that trial again; the best trial is engine.sweep.best_row's, the one the sweep reports) and the marked trials'
per-epoch histories into F10 Runs compared (Compare)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import RnnTuiError

if TYPE_CHECKING:
    from engine.run_book import RunBook
    from engine.sweep import TrialRow
    from tui.app.widgets.settings import SettingsForm


def apply_to_form(best: TrialRow, form: SettingsForm) -> list[str]:
    """The trial's settings written into the form's fields; the NAME=TEXT of each that changed."""
    from tui.app.widgets.settings import FIELDS_BY_NAME, format_field_value

    applied = []
    for name, value in best.form_settings.items():
        if name in FIELDS_BY_NAME:
            text = format_field_value(FIELDS_BY_NAME[name], tuple(value) if isinstance(value, list) else value)
            if form.text_of(name) != text:
                form.set_text(name, text)
                applied.append(f"{name}={text}")
    return applied


def add_to_run_book(rows: list[TrialRow], chosen: set[int], run_book: RunBook, study: str) -> list[str]:
    """The chosen trials that have epochs, added to F10's runs by their history; the numbers of those added."""
    from engine.config import TrainConfig
    from engine.events import EpochEnd

    added = []
    for row in rows:
        if row.number not in chosen or not row.history:
            continue
        try:
            config = TrainConfig.from_dict(row.config)
        except RnnTuiError:
            continue
        history = [
            EpochEnd(
                h["epoch"],
                h["perplexity"],
                h["seconds"],
                h["chars"],
                h["lr"],
                h["clip"],
                val_perplexity=h.get("val_perplexity"),
            )
            for h in row.history
        ]
        run_book.add_history(config, history, f"trial {row.number} of {study}")
        added.append(str(row.number))
    return added
