"""Shared fixtures: the real corpus, found as the product finds it, so a fresh clone can run the tests.

Order: $RNN_TUI_CORPUS, ../shared/data/ beside the project (the team's and CI's copy), data/, the user's cache,
else one download (sha256 verified, from $RNN_TUI_CORPUS_URL when set) into the user's cache. Without any of
these the tests that read the corpus are skipped, each with one line saying how to get it (NO_CORPUS), and the
rest run: a test reads it through the corpus fixtures below (corpus_path, corpus, book_config), or is in a module
of CORPUS_MODULES (those that hand BOOK_CORPUS to a process or read it themselves).
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


NO_CORPUS = (
    f"no corpus: this test reads the book's {DEFAULT_CORPUS_NAME}; put it in data/ or set ${CORPUS_ENV} to its path "
    "(README, Get the corpus)"
)

# Test modules whose every test reads the corpus without asking for a fixture: skipped as a whole without it.
CORPUS_MODULES = frozenset(
    {
        "test_app_robust",
        "test_convert",
        "test_hostile_visitor",
        "test_serve_browser",
        "test_serve_lifecycle",
        "test_served",
    }
)


def find_test_corpus() -> Path | None:
    """The book's corpus for the tests; downloads it into the user's cache at most once. None: not to be had."""
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
    except CorpusError:
        return None


# Found once, before any test changes the environment. Without it, BOOK_CORPUS names where it would be (data/), so
# the modules that import it still load; their tests are skipped.
FOUND_CORPUS = find_test_corpus()
BOOK_CORPUS = FOUND_CORPUS or PROJECT_ROOT / "data" / DEFAULT_CORPUS_NAME

# Every machine looks the same to the tests: no native bfloat16 unless a test says otherwise (tests/test_precision.py);
# else on a CPU with it each fp32 app run notes a measured, varying bf16 speed-up (snapshots would differ per machine).
os.environ.setdefault(NATIVE_ENV, "0")


def pytest_report_header() -> str:
    return f"corpus: {FOUND_CORPUS}" if FOUND_CORPUS else "corpus: none found; the tests that read it are skipped"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if FOUND_CORPUS is None:
        for item in items:
            if item.module is not None and item.module.__name__ in CORPUS_MODULES:
                item.add_marker(pytest.mark.skip(reason=NO_CORPUS))


@pytest.fixture(scope="session")
def corpus_path() -> Path:
    if FOUND_CORPUS is None:
        pytest.skip(NO_CORPUS)
    return FOUND_CORPUS


@pytest.fixture(scope="session")
def corpus(corpus_path: Path) -> Corpus:
    return load_corpus(corpus_path, 10_000)


@pytest.fixture
def book_config(corpus_path: Path) -> TrainConfig:
    return TrainConfig(corpus=str(corpus_path), seed=0)


@pytest.fixture(autouse=True)
def _corpus_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Tests never download and never write to the user's cache.
    if FOUND_CORPUS is None:
        monkeypatch.delenv("RNN_TUI_CORPUS", raising=False)
    else:
        monkeypatch.setenv("RNN_TUI_CORPUS", str(FOUND_CORPUS))
    monkeypatch.setenv("RNN_TUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RNN_TUI_CORPUS_URL", "http://127.0.0.1:9/unreachable")
