"""Shared fixtures: the real corpus from ../shared/data, as CI lays it beside the project."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import TrainConfig
from engine.corpus import Corpus, load_corpus

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BOOK_CORPUS = PROJECT_ROOT.parent / "shared" / "data" / "jaychou_lyrics.txt.zip"


@pytest.fixture(scope="session")
def corpus_path() -> Path:
    if not BOOK_CORPUS.is_file():
        pytest.fail(f"the real corpus is missing: {BOOK_CORPUS} (tests need ../shared/data beside the project)")
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
