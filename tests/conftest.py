"""Shared fixtures: the real corpus, found as the product finds it, so a fresh clone can run the tests.

Order: $RNN_TUI_CORPUS, ../shared/data/ beside the project (the team's and CI's copy), data/, the user's cache,
else one download (sha256 verified, from $RNN_TUI_CORPUS_URL when set) into the user's cache. Without any of
these the session stops with one line saying how to get the corpus.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.config import TrainConfig
from engine.corpus import CORPUS_ENV, DEFAULT_CORPUS_NAME, Corpus, load_corpus
from engine.errors import CorpusError
from engine.precision import NATIVE_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPUS = PROJECT_ROOT.parent / "shared" / "data" / DEFAULT_CORPUS_NAME


def find_test_corpus() -> Path:
    """The book's corpus for the tests; downloads it into the user's cache at most once."""
    from engine.download import corpus_cache_dir, download_corpus

    explicit = os.environ.get(CORPUS_ENV)
    if explicit:
        if not Path(explicit).is_file():
            pytest.exit(f"${CORPUS_ENV} is {explicit}, which is not a file", returncode=2)
        return Path(explicit)
    for candidate in (SHARED_CORPUS, PROJECT_ROOT / "data" / DEFAULT_CORPUS_NAME):
        if candidate.is_file():
            return candidate
    try:  # a valid cached copy is returned without touching the network
        return download_corpus(cache_dir=corpus_cache_dir())
    except CorpusError as exc:
        pytest.exit(
            f"the tests need the book's corpus and could not get it ({exc}): put {DEFAULT_CORPUS_NAME} in data/, "
            f"or set ${CORPUS_ENV} to its path, or $RNN_TUI_CORPUS_URL to a mirror",
            returncode=2,
        )


# Found once, before any test changes the environment.
BOOK_CORPUS = find_test_corpus()

# Every machine looks the same to the tests: no native bfloat16 unless a test says otherwise (tests/test_precision.py);
# else on a CPU with it each fp32 app run notes a measured, varying bf16 speed-up (snapshots would differ per machine).
os.environ.setdefault(NATIVE_ENV, "0")


@pytest.fixture(scope="session")
def corpus_path() -> Path:
    return BOOK_CORPUS


@pytest.fixture(scope="session")
def corpus(corpus_path: Path) -> Corpus:
    return load_corpus(corpus_path, 10_000)


@pytest.fixture
def book_config(corpus_path: Path) -> TrainConfig:
    return TrainConfig(corpus=str(corpus_path), seed=0)


@pytest.fixture(autouse=True)
def _corpus_env(monkeypatch: pytest.MonkeyPatch, corpus_path: Path, tmp_path: Path) -> None:
    # Tests never download and never write to the user's cache.
    monkeypatch.setenv("RNN_TUI_CORPUS", str(corpus_path))
    monkeypatch.setenv("RNN_TUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RNN_TUI_CORPUS_URL", "http://127.0.0.1:9/unreachable")
