"""The verdict: a model's perplexity against the best counting model's (engine/lab/ngram.py), on the same text, in one
line: "counting: 6-gram 3.76 — this model 4.71, ×1.25 worse (test)".

The counting model's order is chosen on the held-out text, as the model's best epoch is; the figures compared are
both held-out ones while a run trains, both test ones once it has ended with a test text. The line names which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.data.corpus import Corpus
    from engine.lab.ngram import NgramTable

HELD_OUT = "held-out"
TEST = "test"


def figure(value: float) -> str:
    """A perplexity with three or four significant digits: 3.76, 129.0, 1,027."""
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 100 else f"{value:.2f}"


@dataclass(frozen=True)
class Verdict:
    order: int  # the counting model's n, chosen on held-out
    counting: float  # its perplexity on text
    model: float  # the model's perplexity on the same text
    text: str  # HELD_OUT or TEST: which text both figures read

    @property
    def ratio(self) -> float:
        return self.model / self.counting

    @property
    def wins(self) -> bool:
        """The model predicts the text better than counting does."""
        return self.model < self.counting

    def words(self) -> str:
        """'×1.25 worse' or '×0.93, better'."""
        return f"×{self.ratio:.2f}, better" if self.wins else f"×{self.ratio:.2f} worse"

    def line(self) -> str:
        """'counting: 6-gram 3.76 — this model 4.71, ×1.25 worse (test)'."""
        return (
            f"counting: {self.order}-gram {figure(self.counting)} — this model {figure(self.model)}, "
            f"{self.words()} ({self.text})"
        )

    def short(self) -> str:
        """'6-gram 3.76: ×1.25 worse (test)', for a narrow panel."""
        return f"{self.order}-gram {figure(self.counting)}: {self.words()} ({self.text})"

    def shortest(self) -> str:
        """'6-gram 3.76 ×1.25 worse (test)', counting's figure to 3 digits: for an 80-column border."""
        return f"{self.order}-gram {self.counting:.3g} {self.words()} ({self.text})"

    def record(self) -> dict[str, Any]:
        """The --metrics fields: counting_best, counting_order and which text they read."""
        return {"counting_best": self.counting, "counting_order": self.order, "counting_text": self.text}


def verdict(table: NgramTable, held_out: float | None, test: float | None = None) -> Verdict | None:
    """The model's test figure against counting's on the test text when both exist, else its held-out figure against
    counting's held-out one (None when the model has no finite figure)."""
    chosen = table.best_test()
    if test is not None and math.isfinite(test) and chosen is not None and math.isfinite(chosen[1]):
        return Verdict(chosen[0], chosen[1], test, TEST)
    order, counting = table.best()
    if held_out is None or not math.isfinite(held_out) or not math.isfinite(counting):
        return None
    return Verdict(order, counting, held_out, HELD_OUT)


def counting_table(corpus: Corpus, num_steps: int) -> NgramTable | None:
    """The counting baselines of a run's corpus, its held-out stretches num_steps long; None
    without held-out text. About a second on the whole Time Machine (bench/ngram_speed.py)."""
    from engine.lab.ngram import ngram_table

    if not corpus.held_out:
        return None
    return ngram_table(corpus.vocab, corpus.text, corpus.held_out, num_steps, test_text=corpus.test)
