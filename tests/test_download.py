"""engine.data.download against a local HTTP server (no internet needed)."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from conftest import BOOK_CORPUS

from engine.data.download import (
    BOOK_CORPUS_SHA256,
    CORPUS_FILENAME,
    corpus_cache_dir,
    download_corpus,
)
from engine.errors import CorpusError, RnnTuiError

REAL_CORPUS = BOOK_CORPUS

needs_corpus = pytest.mark.skipif(not REAL_CORPUS.is_file(), reason=f"real corpus not found at {REAL_CORPUS}")


class _Server:
    """A static file server on an ephemeral 127.0.0.1 port that counts GET requests."""

    def __init__(self, root: Path) -> None:
        self.requests = 0
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep pytest output clean

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[bytes], _Server]]:
    """serve(bytes) -> a running server whose only file is CORPUS_FILENAME."""
    servers: list[_Server] = []

    def start(content: bytes) -> _Server:
        root = tmp_path / f"www{len(servers)}"
        root.mkdir()
        (root / CORPUS_FILENAME).write_bytes(content)
        server = _Server(root)
        server.thread.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


def test_cache_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RNN_TUI_CACHE_DIR", str(tmp_path / "x"))
    assert corpus_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("RNN_TUI_CACHE_DIR")
    assert "rnn-tui" in str(corpus_cache_dir())


@needs_corpus
def test_download_verifies_and_reports_progress(serve: Callable[[bytes], _Server], cache: Path) -> None:
    content = REAL_CORPUS.read_bytes()
    server = serve(content)
    calls: list[tuple[int, int]] = []

    path = download_corpus(
        server.url(CORPUS_FILENAME),
        progress=lambda done, total: calls.append((done, total)),
        cache_dir=cache,
    )

    assert path == cache / CORPUS_FILENAME
    assert hashlib.sha256(path.read_bytes()).hexdigest() == BOOK_CORPUS_SHA256
    assert _files(cache) == [path]  # no temp file left behind
    assert calls and calls[-1] == (len(content), len(content))
    assert len(calls) > 1  # reported while bytes arrived, not only at the end
    dones = [d for d, _ in calls]
    assert dones == sorted(dones)  # never goes backwards
    assert server.requests == 1


@needs_corpus
def test_url_from_environment(serve: Callable[[bytes], _Server], cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(REAL_CORPUS.read_bytes())
    monkeypatch.setenv("RNN_TUI_CORPUS_URL", server.url(CORPUS_FILENAME))
    monkeypatch.setenv("RNN_TUI_CACHE_DIR", str(cache))
    assert download_corpus() == cache / CORPUS_FILENAME
    assert server.requests == 1


def test_checksum_mismatch_leaves_nothing(serve: Callable[[bytes], _Server], cache: Path) -> None:
    wrong = b"not the corpus" * 1000
    server = serve(wrong)

    with pytest.raises(CorpusError) as info:
        download_corpus(server.url(CORPUS_FILENAME), cache_dir=cache)

    message = str(info.value)
    assert "checksum" in message
    assert BOOK_CORPUS_SHA256[:12] in message
    assert hashlib.sha256(wrong).hexdigest()[:12] in message
    assert "\n" not in message
    assert isinstance(info.value, RnnTuiError)
    assert _files(cache) == []


def test_http_error_leaves_nothing(serve: Callable[[bytes], _Server], cache: Path) -> None:
    server = serve(b"")
    with pytest.raises(CorpusError, match="404"):
        download_corpus(server.url("missing.zip"), cache_dir=cache)
    assert _files(cache) == []


def test_connection_refused_leaves_nothing(cache: Path) -> None:
    # Bind then close: the port is free and nothing listens on it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{CORPUS_FILENAME}"

    with pytest.raises(CorpusError) as info:
        download_corpus(url, cache_dir=cache)

    message = str(info.value)
    assert message.startswith(f"download of {url} failed: ")
    assert "refused" in message
    assert "\n" not in message
    assert _files(cache) == []


@needs_corpus
def test_valid_cache_makes_no_request(serve: Callable[[bytes], _Server], cache: Path) -> None:
    server = serve(REAL_CORPUS.read_bytes())
    url = server.url(CORPUS_FILENAME)
    first = download_corpus(url, cache_dir=cache)
    assert server.requests == 1

    second = download_corpus(url, cache_dir=cache)

    assert second == first
    assert server.requests == 1


@needs_corpus
def test_damaged_cache_is_replaced(serve: Callable[[bytes], _Server], cache: Path) -> None:
    cache.mkdir()
    (cache / CORPUS_FILENAME).write_bytes(b"truncated")
    server = serve(REAL_CORPUS.read_bytes())

    path = download_corpus(server.url(CORPUS_FILENAME), cache_dir=cache)

    assert hashlib.sha256(path.read_bytes()).hexdigest() == BOOK_CORPUS_SHA256
    assert server.requests == 1


def test_damaged_cache_removed_when_download_fails(serve: Callable[[bytes], _Server], cache: Path) -> None:
    cache.mkdir()
    (cache / CORPUS_FILENAME).write_bytes(b"truncated")
    server = serve(b"still wrong")
    with pytest.raises(CorpusError, match="checksum"):
        download_corpus(server.url(CORPUS_FILENAME), cache_dir=cache)
    assert _files(cache) == []


@needs_corpus
def test_progress_callback_exception_propagates(serve: Callable[[bytes], _Server], cache: Path) -> None:
    server = serve(REAL_CORPUS.read_bytes())

    class Cancelled(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        download_corpus(server.url(CORPUS_FILENAME), progress=cancel, cache_dir=cache)
    assert _files(cache) == []


@pytest.fixture
def no_local_corpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As on a fresh machine: no --corpus, no $RNN_TUI_CORPUS, nothing in data/."""
    monkeypatch.delenv("RNN_TUI_CORPUS", raising=False)
    monkeypatch.setattr("engine.data.corpus.default_corpus_paths", lambda: [tmp_path / "data" / CORPUS_FILENAME])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_fresh_machine_downloads_then_trains(
    serve: Callable[[bytes], _Server], cache: Path, no_local_corpus: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from tui.main import main

    server = serve(REAL_CORPUS.read_bytes())
    argv = ["train", "--headless", "--epochs", "1", "--pred-period", "1", "--pred-len", "3", "--hidden", "16"]
    assert main([*argv, "--corpus-url", server.url(CORPUS_FILENAME)]) == 0
    captured = capsys.readouterr()
    assert "downloading the book's corpus [##############################] 51 / 51 KiB" in captured.err
    assert f"downloaded the book's corpus to {cache / CORPUS_FILENAME}" in captured.err
    assert "vocabulary 1,027" in captured.err
    assert captured.out.startswith("epoch 1, perplexity ")


def test_offline_falls_back_to_the_built_in_corpus(
    no_local_corpus: None, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tui.main import main

    argv = ["train", "--headless", "--epochs", "1", "--pred-period", "1", "--pred-len", "3", "--hidden", "16"]
    assert main([*argv, "--corpus-url", "http://127.0.0.1:9/jaychou_lyrics.txt.zip"]) == 0
    captured = capsys.readouterr()
    assert "downloading the book's corpus failed" in captured.err
    # In order: which corpus (the line the app's Status shows), why, its split, its own prefixes.
    lines = captured.err.splitlines()
    assert lines[0] == "no corpus found: training on the built-in sample corpus"
    assert lines[1].startswith("downloading the book's corpus failed")
    # 4,851 characters, fewer than --max-chars: its last tenth is the test text, the tenth before it is held out,
    # and the vocabulary is the rest's.
    assert (
        "training on the first 3,881 and holding out the next 485 (val-fraction 0.1) and testing on the last 485"
        in lines[2]
    )
    assert "own sample prefixes: 等你 and 春天" in lines[3]
    assert "vocabulary 436" in captured.err and "is not sampled" not in captured.err
    assert captured.out.startswith("epoch 1, perplexity ")
    samples = [line for line in captured.out.splitlines() if line.startswith(" - ")]
    assert [line[3:5] for line in samples] == ["等你", "春天"]  # the book's 分开 would give no samples at all
    assert not any(cache.rglob("*.zip"))
