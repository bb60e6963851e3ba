"""Generation stays within a seat's share (issue 32, item 2): a long prefix is read in chunks, giving what one
forward pass over it gives; a prefix over the limit and a generation past the memory left are one-line refusals."""

from __future__ import annotations

import pytest
import torch

from engine.config import MAX_PREFIX_LEN
from engine.data.corpus import Corpus
from engine.errors import PrefixError
from engine.generate import PREFIX_CHUNK, generate, generation_steps
from engine.limits import MEMORY_SHARE_ENV, resident_memory
from engine.model import CharRNN


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_long_prefix_read_in_chunks_gives_what_one_pass_gives(corpus: Corpus, cell: str) -> None:
    torch.manual_seed(0)
    model = CharRNN(len(corpus.vocab), cell, hidden=32, layers=2)
    prefix = corpus.text[: 3 * PREFIX_CHUNK + 17]
    with torch.inference_mode():
        first_logits, _ = next(generation_steps(model, corpus.vocab, prefix, 1, None, None, None))
        whole, _ = model(torch.tensor(corpus.vocab.encode(prefix)).view(-1, 1))
    torch.testing.assert_close(first_logits, whole[-1], rtol=1e-4, atol=1e-5)


def test_a_prefix_over_the_limit_and_a_generation_past_the_memory_left_are_refused(
    corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = CharRNN(len(corpus.vocab), "gru", hidden=32)
    too_long = (corpus.text * 2)[: MAX_PREFIX_LEN + 1]
    with pytest.raises(PrefixError, match=f"the limit is {MAX_PREFIX_LEN:,}"):
        generate(model, corpus.vocab, too_long, 5)
    monkeypatch.setenv(MEMORY_SHARE_ENV, str(resident_memory() + 2**16))  # 64 KiB left of this process's share
    with pytest.raises(PrefixError, match=r"needs about .* is available: use a shorter prefix"):
        generate(model, corpus.vocab, corpus.text[:5000], 5)
