"""The verdict line (engine/verdict.py): which text it reads, and its words either way."""

from __future__ import annotations

from engine.lab.ngram import NgramTable
from engine.verdict import verdict

TABLE = NgramTable((5, 6, 7), (3.91, 3.76, 3.77), 17_000, 0, test=(4.0, 3.86, 3.9), test_targets=17_000)


def test_held_out_while_training_and_test_once_there_is_a_test_figure() -> None:
    during = verdict(TABLE, 4.71)
    assert during is not None and during.line() == "counting: 6-gram 3.76 — this model 4.71, ×1.25 worse (held-out)"
    ended = verdict(TABLE, 4.71, 3.59)
    assert ended is not None and ended.line() == "counting: 6-gram 3.86 — this model 3.59, ×0.93, better (test)"
    assert ended.short() == "6-gram 3.86: ×0.93, better (test)"
    assert ended.record() == {"counting_best": 3.86, "counting_order": 6, "counting_text": "test"}


def test_no_figure_no_verdict_and_no_test_text_stays_on_held_out() -> None:
    assert verdict(TABLE, None) is None and verdict(TABLE, float("nan")) is None
    plain = NgramTable((1, 2), (231.6, 142.9), 1_470, 190)
    judged = verdict(plain, 224.0, 230.0)
    assert judged is not None and judged.text == "held-out" and judged.line().endswith("224.0, ×1.57 worse (held-out)")
