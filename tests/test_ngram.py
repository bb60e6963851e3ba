"""Modified Kneser–Ney counting baselines (engine/lab/ngram.py; issue #28, item 2): a toy text by hand, distributions
that sum to one, the anchors' reference values on the real corpora, and beating the single-discount figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.data.corpus import TIME_MACHINE_PATH, Corpus, Vocab, load_corpus
from engine.lab.ngram import ModifiedKneserNey, discounts, ngram_table

ANCHOR_TOLERANCE = 0.005  # relative: "choices at the lowest order move these a little" (generalise-anchors.md)


def test_a_toy_bigram_equals_the_hand_computation() -> None:
    vocab = Vocab(("a", "b", "c"))  # c is in the vocabulary but never in training: only the uniform part reaches it
    train = vocab.encode("aaaaabababb")
    # Bigrams: aa 4, ab 3, ba 2, bb 1; counts of counts n1 … n4 = 1, 1, 1, 1, so Y = 1/3 and
    # D1 = 1 − 2Y = 1/3, D2 = 2 − 3Y = 1, D3+ = 3 − 4Y = 5/3.
    assert discounts(np.array([4.0, 3.0, 2.0, 1.0])) == pytest.approx((1 / 3, 1, 5 / 3))
    # Continuation counts a 2 ({a, b} precede it), b 2, c 0: n1 = 0, n2 = 2, so Y = 0, D2 = 2: the 1-gram is uniform.
    # History a: N = 7, γ = (5/3 + 5/3) / 7: P(a|a) = (4 − 5/3)/7 + γ/3 = 31/63, P(b|a) = (3 − 5/3)/7 + γ/3 = 22/63,
    # P(c|a) = γ/3 = 10/63. History b: N = 3, γ = (D2 + D1)/3 = 4/9: P(a|b) = (2 − 1)/3 + 4/27 = 13/27,
    # P(b|b) = (1 − 1/3)/3 + 4/27 = 10/27, P(c|b) = 4/27. History c, never seen: the uniform 1-gram, 1/3.
    model = ModifiedKneserNey(train, 2, 3)
    assert model.distribution([0]) == pytest.approx([31 / 63, 22 / 63, 10 / 63], rel=1e-12)
    assert model.distribution([1]) == pytest.approx([13 / 27, 10 / 27, 4 / 27], rel=1e-12)
    assert model.distribution([2]) == pytest.approx([1 / 3, 1 / 3, 1 / 3], rel=1e-12)
    # Held-out "abcab", stretches of 4: targets b|a, c|b, a|c, b|a.
    by_hand = math.exp(-(2 * math.log(22 / 63) + math.log(4 / 27) + math.log(1 / 3)) / 4)
    table = ngram_table(vocab, "aaaaabababb", "abcab", length=4, orders=(2,), test_text="abcab")
    assert table.held_out[0] == pytest.approx(by_hand, rel=1e-12)
    assert table.test == table.held_out and table.best_test() == (2, table.held_out[0])


def book_split(corpus_path: Path) -> Corpus:
    return load_corpus(corpus_path, 10_000, 1_500)


@pytest.mark.parametrize("order", [1, 2, 3, 5, 8])
def test_every_history_gets_a_distribution_that_sums_to_one(corpus_path: Path, order: int) -> None:
    corpus = book_split(corpus_path)
    encoded = corpus.vocab.encode(corpus.text)
    model = ModifiedKneserNey(encoded, order, len(corpus.vocab))
    seen = encoded[100 : 100 + order - 1]
    held, _ = corpus.vocab.encode_unseen(corpus.held_out[:7])
    for history in (seen, [], encoded[:1], [0] * (order - 1), held[: order - 1], [len(corpus.vocab) - 1] * 3):
        assert model.distribution(history).sum() == pytest.approx(1.0, abs=1e-12)
    # The text's own scoring and the distribution agree.
    text = [*seen, encoded[100 + order - 1]]
    assert model.probabilities(text)[-1] == pytest.approx(model.distribution(seen)[text[-1]], rel=1e-12)


def test_the_anchors_reference_values_and_the_order_chosen_on_held_out(corpus_path: Path) -> None:
    # Independent modified-KN figures (../shared/seed/generalise-anchors.md), with no test text cut off.
    book = book_split(corpus_path)
    table = ngram_table(book.vocab, book.text, book.held_out, 35)
    assert table.held_out[5] == pytest.approx(129.0, rel=ANCHOR_TOLERANCE)  # 6-gram
    assert table.held_out[1] == pytest.approx(142.9, rel=ANCHOR_TOLERANCE)  # 2-gram
    english = load_corpus(TIME_MACHINE_PATH, 10_000, 5_000, preset="d2l-en")
    table = ngram_table(english.vocab, english.text, english.held_out, 32)
    assert table.held_out[5] == pytest.approx(4.66, rel=ANCHOR_TOLERANCE)
    whole = load_corpus(TIME_MACHINE_PATH, 0, 5_000, 0.1, preset="d2l-en")
    table = ngram_table(whole.vocab, whole.text, whole.held_out, 32)
    assert table.held_out[6] == pytest.approx(3.69, rel=ANCHOR_TOLERANCE)  # 7-gram
    assert table.best()[0] in (6, 7, 8)  # long orders pay on letters
    lyrics = load_corpus(corpus_path, 0, 1_500, 0.1)
    table = ngram_table(lyrics.vocab, lyrics.text, lyrics.held_out, 35)
    assert table.held_out[5] == pytest.approx(141.7, rel=ANCHOR_TOLERANCE)


@pytest.mark.parametrize("whole", [False, True])
def test_modified_kneser_ney_beats_the_single_discount_on_both_corpora(corpus_path: Path, whole: bool) -> None:
    for corpus, length in (
        (load_corpus(corpus_path, 0 if whole else 10_000, 1_500, 0.1, test_fraction=0.1), 35),
        (load_corpus(TIME_MACHINE_PATH, 0 if whole else 10_000, 5_000, 0.1, "d2l-en", test_fraction=0.1), 32),
    ):
        modified = ngram_table(corpus.vocab, corpus.text, corpus.held_out, length, test_text=corpus.test)
        single = ngram_table(
            corpus.vocab, corpus.text, corpus.held_out, length, (1, 2, 3, 4, 5), corpus.test, single=True
        )
        assert modified.best()[1] < single.best()[1]  # held-out, each at its own best order
        chosen, single_chosen = modified.best_test(), single.best_test()
        assert chosen is not None and single_chosen is not None
        assert chosen[1] < single_chosen[1]  # and on the test text, at the orders held-out chose
