"""The Sweep screen's trials table as text: the order its header sorts by, a trial's cells, the line under the table
that shows the trial under the cursor in full."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from engine.sweep import TrialRow

STATE_STYLES = {"complete": "green", "pruned": "yellow", "failed": "red", "running": "cyan", "waiting": "dim"}
SORT_KEYS = ("#", "state", "ppl", "epochs", "time")


def sorted_trials(rows: list[TrialRow], sort_key: str, reverse: bool) -> list[TrialRow]:
    """The trials in the order of a column of SORT_KEYS."""

    def key(row: TrialRow) -> str | float:
        if sort_key == "state":
            return row.state
        if sort_key == "ppl":
            return row.best if row.best is not None else math.inf
        if sort_key == "epochs":
            return row.epochs
        if sort_key == "time":
            return row.seconds or 0.0
        return row.number

    return sorted(rows, key=key, reverse=reverse)


def table_cells(row: TrialRow, marked: bool) -> tuple[str | Text, ...]:
    """A trial's row: marked, number, state, best perplexity (* the training one), epochs, time, settings."""
    ppl = "-" if row.best is None or not math.isfinite(row.best) else f"{row.best:,.1f}" + ("*" if row.fallback else "")
    params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.params.items())
    seconds = f"{row.seconds:.0f}s" if row.seconds is not None else "-"
    return (
        "✓" if marked else " ",
        str(row.number),
        Text(row.state, style=STATE_STYLES.get(row.state, "")),
        ppl,
        f"{row.epochs}/{row.planned}" if row.state == "running" and row.planned else str(row.epochs),
        seconds,
        params,
    )


def trial_detail(row: TrialRow, best: bool) -> str:
    """The trial in full (the table's settings column is cut on a narrow terminal); the best one's test figure too."""
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.params.items())
    facts = [f"trial {row.number} {row.state}", params or "(no settings yet)"]
    if row.seed is not None:
        facts.append(f"seed {row.seed}")
    if row.best_epoch is not None:
        facts.append(f"best at epoch {row.best_epoch}")
    if best and row.history and row.history[-1].get("test_perplexity") is not None:
        facts.append(f"test {row.history[-1]['test_perplexity']:,.1f} (reported once, ranks nothing)")
    if row.host:
        facts.append(row.host)
    if row.reason:
        facts.append(row.reason)
    return " · ".join(facts)
