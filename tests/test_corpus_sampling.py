from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from engine.config import flag_name
from engine.data.corpus import (
    CORPUS_ENV,
    Corpus,
    Vocab,
    default_corpus_paths,
    find_corpus,
    load_corpus,
    missing_corpus_message,
)
from engine.data.sampling import consecutive_batch_count, consecutive_batches, random_batch_count, random_batches
from engine.errors import CorpusError, worded


def test_book_vocabulary_has_1027_sorted_characters(corpus: Corpus) -> None:
    assert len(corpus.text) == 10_000
    assert "\n" not in corpus.text and "\r" not in corpus.text
    assert len(corpus.vocab) == 1027
    assert list(corpus.vocab.idx_to_char) == sorted(corpus.vocab.idx_to_char)
    assert Vocab.from_text(corpus.text) == corpus.vocab  # deterministic, unlike the book's list(set())
    assert corpus.vocab.decode(corpus.vocab.encode(corpus.text[:100])) == corpus.text[:100]
    assert corpus.text.startswith("想要有直升机")


def test_consecutive_batches_continue_each_other(corpus: Corpus) -> None:
    data = torch.tensor(corpus.indices)
    batches = list(consecutive_batches(data, 32, 35))
    assert len(batches) == consecutive_batch_count(len(data), 32, 35) == (10_000 // 32 - 1) // 35 == 8
    rows = data[: 32 * (10_000 // 32)].view(32, -1)
    for i, (x, y) in enumerate(batches):
        assert x.shape == y.shape == (35, 32)  # time-major
        assert torch.equal(x.t(), rows[:, i * 35 : (i + 1) * 35])
        assert torch.equal(y.t(), rows[:, i * 35 + 1 : (i + 1) * 35 + 1])  # targets: the next character
    for (x0, _), (x1, _) in itertools.pairwise(batches):
        # row r of the next batch starts right after row r of this one: the state can be carried
        assert torch.equal(x1[0], rows.t()[x0.shape[0] + int((rows.t() == x0[0]).all(1).nonzero()[0])])


def test_random_batches_are_shuffled_whole_examples(corpus: Corpus) -> None:
    data = torch.tensor(corpus.indices)
    generator = torch.Generator().manual_seed(0)
    batches = list(random_batches(data, 32, 35, generator))
    assert len(batches) == random_batch_count(len(data), 32, 35) == ((10_000 - 1) // 35) // 32 == 8
    examples = data[: (len(data) - 1) // 35 * 35].view(-1, 35)
    available = Counter(tuple(e.tolist()) for e in examples)
    seen: Counter[tuple[int, ...]] = Counter()
    starts = []
    for x, y in batches:
        assert x.shape == y.shape == (35, 32)
        for column in range(32):
            start = int((examples == x[:, column]).all(1).nonzero()[0, 0]) * 35  # an example starts at a multiple of 35
            assert torch.equal(y[:, column], data[start + 1 : start + 36])  # targets: the next character
            seen[tuple(x[:, column].tolist())] += 1
            starts.append(start)
    assert all(seen[e] <= available[e] for e in seen)  # no example drawn twice in an epoch
    assert starts != sorted(starts)  # shuffled
    again = [x for x, _ in random_batches(data, 32, 35, torch.Generator().manual_seed(0))]
    assert all(torch.equal(a, b) for a, (b, _) in zip(again, batches, strict=True))


def test_load_corpus_reads_a_path_given_as_text(corpus_path: Path) -> None:
    as_text = load_corpus(str(corpus_path), 2_000, val_chars=500)
    as_path = load_corpus(corpus_path, 2_000, val_chars=500)
    assert (as_text.text, as_text.held_out, as_text.vocab) == (as_path.text, as_path.held_out, as_path.vocab)
    assert len(as_text.text) == 2_000 and len(as_text.held_out) == 500


def test_corpus_messages_name_the_setting_as_each_front_end_calls_it(tmp_path: Path) -> None:
    from tui.app.widgets.settings import form_name

    message = missing_corpus_message()
    assert "set --corpus to its path" in worded(message, flag_name)
    assert "set corpus to its path" in worded(message, form_name) and "--" not in worded(message, form_name)
    with pytest.raises(CorpusError) as raised:
        find_corpus(str(tmp_path / "absent.txt"))
    assert raised.value.worded(flag_name).endswith("absent.txt (from --corpus)")
    assert raised.value.worded(form_name).endswith("absent.txt (from corpus)")


def test_serve_without_a_corpus_names_the_flag(tmp_path: Path) -> None:
    """The classroom server downloads nothing: with no corpus anywhere it stops in one line naming --corpus."""
    project_data = [path for path in default_corpus_paths() if path.is_file() and tmp_path not in path.parents]
    if project_data:
        pytest.skip(f"a corpus lies in the project's data/ ({project_data[0]}): serve would find it")
    env = {name: value for name, value in os.environ.items() if name != CORPUS_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "tui.main", "serve", "--port", "1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "no corpus found" in done.stderr
    assert "set --corpus to its path" in done.stderr
