"""The catalogue of bad inputs on the command line: one line on stderr, exit code 2, nothing lost."""

from __future__ import annotations

import io
import os
import pickle
import random
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.data.corpus import Corpus
from tui.main import main

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the entry point in-process; return its exit code and what it printed on stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("rnn-tui") and "error" in lines[0]
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def tiny_zip(tmp_path: Path, corpus_path: Path) -> Path:
    return corpus_path  # the real one, for rows that need a valid corpus


# ----- corpus -----


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda d: d / "nope.zip", "corpus not found"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "empty.txt", b""), "is empty"),
        (lambda d: _write(d / "latin1.txt", "café".encode("latin-1") * 500), "not UTF-8"),
        (lambda d: _zip(d / "other.zip", {"a.txt": "一", "b.txt": "二"}), "no jaychou_lyrics.txt"),
        (lambda d: _zip(d / "none.zip", {"x.csv": "一"}), "no jaychou_lyrics.txt"),
        (lambda d: _write(d / "fake.zip", b"this is not a zip at all"), "not a valid zip"),
        (lambda d: _write(d / "short.txt", "短短的一句歌词".encode()), "needs at least 1,152"),
    ],
    ids=["missing", "directory", "empty", "not-utf8", "zip-without-member", "zip-no-txt", "not-a-zip", "too-short"],
)
def test_bad_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], Path], needle: str
) -> None:
    path = make(tmp_path)
    code, err = run_main(["train", "--headless", "--epochs", "1", "--corpus", str(path)], capsys)
    assert_one_line_error(code, err, needle)


def _fifo(directory: Path) -> Path:
    os.mkfifo(directory / "pipe")
    return directory / "pipe"


def _socket(directory: Path) -> Path:
    import socket

    path = directory / "sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))  # left bound until the test's process ends: the file stays a socket
    _SOCKETS.append(listener)
    return path


_SOCKETS: list[object] = []


@pytest.mark.parametrize(
    "make, kind",
    [(lambda d: Path("/dev/zero"), "a character device"), (_fifo, "a named pipe"), (_socket, "a socket")],
    ids=["dev-zero", "fifo", "socket"],
)
def test_a_corpus_that_is_not_a_regular_file_is_refused_at_once(
    tmp_path: Path, make: Callable[[Path], Path], kind: str
) -> None:
    # In a child with a deadline: before the check, /dev/zero was read for ever and a FIFO's open blocked.
    path = make(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "tui.main", "train", "--headless", "--epochs", "1", "--corpus", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
    )
    assert_one_line_error(done.returncode, done.stderr, f"is {kind}", str(path))


def test_truncated_zip(tmp_path: Path, corpus_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = corpus_path.read_bytes()
    truncated = _write(tmp_path / "cut.zip", data[: len(data) // 2])
    code, err = run_main(["train", "--headless", "--epochs", "1", "--corpus", str(truncated)], capsys)
    assert_one_line_error(code, err, "zip")


def test_huge_corpus_is_refused_without_reading_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(65 * 2**20)  # sparse: costs no disk, and no memory since it is never read
    code, err = run_main(["train", "--headless", "--max-chars", "0", "--corpus", str(huge)], capsys)
    assert_one_line_error(code, err, "65 MiB", "limit is 64 MiB")


# ----- settings -----


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--epochs", "ten"], "invalid int value: 'ten'"),
        (["--epochs", "0"], "epochs must be"),
        (["--hidden", "-5"], "hidden must be"),
        (["--batch-size", "0"], "batch-size must be"),
        (["--num-steps", "-1"], "num-steps must be"),
        (["--lr", "0"], "lr must be > 0"),
        (["--lr", "nan"], "lr must be a finite number"),
        (["--lr", "inf"], "lr must be a finite number"),
        (["--clip", "-0.1"], "clip must be ≥ 0"),
        (["--temperature", "0"], "temperature must be > 0"),
        (["--temperature", "-1"], "temperature must be > 0"),
        (["--cell", "transformer"], "invalid choice: 'transformer'"),
        (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
        (["--sampling", "shuffled"], "invalid choice: 'shuffled'"),
        (["--device", "tpu"], "invalid choice: 'tpu'"),
        (["--dropout", "1.5"], "dropout must be in [0, 1)"),
        (["--prefix", ""], "a prefix is empty"),
    ],
)
def test_bad_settings(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    code, err = run_main(["train", "--headless", *argv], capsys)
    assert_one_line_error(code, err, needle)
    code, err = run_main(argv, capsys)  # the app takes the same flags and refuses before opening
    assert_one_line_error(code, err, needle)


def test_cuda_asked_without_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = run_main(["train", "--headless", "--device", "cuda", "--epochs", "1"], capsys)
    assert_one_line_error(code, err, "device cuda is not available")


# ----- checkpoints -----


class _RunsCode:
    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:  # unpickling it would create a file: never
        return (os.system, ("touch PWNED",))


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory: pytest.TempPathFactory, corpus_path: Path) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "good.ckpt"
    env = {**os.environ, "RNN_TUI_CORPUS": str(corpus_path), "OMP_NUM_THREADS": "1"}
    argv = ["train", "--headless", "--epochs", "1", "--hidden", "32", "--seed", "1", "--save", str(path)]
    subprocess.run([sys.executable, "-m", "tui.main", *argv], check=True, env=env, capture_output=True, timeout=300)
    return path


@pytest.mark.parametrize("kind", ["missing", "truncated", "random", "proto-random", "code", "torch-code", "text"])
def test_bad_checkpoint(
    tmp_path: Path,
    good_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"{kind}.ckpt"
    if kind == "truncated":
        _write(path, good_checkpoint.read_bytes()[:5000])
    elif kind == "random":
        _write(path, os.urandom(4096))
    elif kind == "proto-random":  # random bytes after a pickle's PROTO opcode (1 file in 256) are still damage
        _write(path, b"\x80\x04" + random.Random(7).randbytes(4094))
    elif kind == "code":
        _write(path, pickle.dumps({"model": _RunsCode()}))
    elif kind == "torch-code":
        import torch

        torch.save({"format": "rnn-tui-checkpoint", "model": _RunsCode()}, path)  # a checkpoint-shaped zip
    elif kind == "text":
        _write(path, b"hello")
    needle = {"missing": "not found", "code": "refused", "torch-code": "refused"}.get(
        kind, "not a readable rnn-tui checkpoint"
    )
    for argv in (["generate", "--checkpoint", str(path)], ["train", "--headless", "--resume", str(path)]):
        code, err = run_main(argv, capsys)
        assert_one_line_error(code, err, needle)
    assert not (tmp_path / "PWNED").exists()


def test_checkpoint_that_does_not_fit(
    good_checkpoint: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run_main(["train", "--headless", "--resume", str(good_checkpoint), "--hidden", "64"], capsys)
    assert_one_line_error(code, err, "--hidden 64 does not fit the checkpoint")
    other = _write(tmp_path / "other.txt", ("另一个语料库的文字" * 300).encode())
    code, err = run_main(["train", "--headless", "--resume", str(good_checkpoint), "--corpus", str(other)], capsys)
    assert_one_line_error(code, err, "vocabulary")


@pytest.mark.parametrize("progress", ["absent", "damaged", "beyond the epoch"])
def test_checkpoint_epoch_progress(
    good_checkpoint: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, progress: str
) -> None:
    """Checkpoints from before mid-epoch resume (no progress) still resume; a damaged progress is refused."""
    import torch

    payload = torch.load(good_checkpoint, weights_only=True)
    if progress == "absent":
        payload.pop("progress")
    elif progress == "damaged":
        payload["progress"] = {"batches": 2}
    else:
        payload["progress"] = {
            "batches": 99,
            "loss_sum": 1.0,
            "chars": 1,
            "seconds": 0.1,
            "shuffle_state": torch.zeros(3),
        }
    path = tmp_path / "edited.ckpt"
    torch.save(payload, path)
    code, err = run_main(["train", "--headless", "--resume", str(path), "--epochs", "1"], capsys)
    if progress == "absent":
        assert code == 0 and f"resumed {path} at epoch 1" in err
        assert "nothing to train: the checkpoint has trained 1 epoch and --epochs is 1; pass --epochs above 1" in err
    elif progress == "damaged":
        assert_one_line_error(code, err, "incomplete or damaged rnn-tui checkpoint")
    else:
        assert_one_line_error(code, err, "stopped after batch 99 of an epoch, but an epoch here has 8 batches")
        from engine.errors import CheckpointError
        from engine.session import check_resume

        with pytest.raises(CheckpointError, match="stopped after batch 99"):  # the app checks before it stops a run
            check_resume(str(path), {})


# ----- prefixes and generation -----


def test_bad_prefixes_and_lengths(good_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["generate", "--checkpoint", str(good_checkpoint)]
    code, err = run_main([*base, "--prefix", ""], capsys)
    assert_one_line_error(code, err, "empty")
    code, err = run_main([*base, "--prefix", "分开Ω☃"], capsys)
    assert_one_line_error(code, err, "'Ω'", "'☃'")
    code, err = run_main([*base, "--prefix", "分开", "--len", "-1"], capsys)
    assert_one_line_error(code, err, "length must be between 0 and 10,000")
    assert main([*base, "--prefix", "分开", "--len", "100000000"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "length 100,000,000 capped at 10,000 characters\n"
    assert len(captured.out.rstrip("\n")) == len("分开") + 10_000
    code, err = run_main([*base, "--prefix", "分开", "--top-k", "0"], capsys)
    assert_one_line_error(code, err, "top-k must be ≥ 1")
    code, err = run_main([*base, "--prefix", "分开", "--temperature", "0"], capsys)
    assert_one_line_error(code, err, "temperature must be > 0")


def test_very_long_prefix_generates(good_checkpoint: Path, corpus: Corpus, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = corpus.text  # 10,000 characters, all in the vocabulary
    code = main(["generate", "--checkpoint", str(good_checkpoint), "--prefix", prefix, "--len", "5"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith(prefix) and len(out.rstrip("\n")) == 10_005


# ----- faults -----


def test_ctrl_c_stops_after_the_batch_and_saves(tmp_path: Path, corpus_path: Path) -> None:
    checkpoint = tmp_path / "interrupted.ckpt"
    env = {**os.environ, "RNN_TUI_CORPUS": str(corpus_path), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    argv = [
        "train",
        "--headless",
        "--epochs",
        "1000",
        "--pred-period",
        "1",
        "--pred-len",
        "2",
        "--save",
        str(checkpoint),
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "tui.main", *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("epoch 1,")  # training is under way
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err  # 128 + SIGINT: stopped before its epochs (tests/test_faults.py: others)
    assert "Traceback" not in err and "ctrl+c: stopping after the current batch" in err
    assert "saved checkpoint" in err and checkpoint.is_file()
    from engine.checkpoint import load

    assert load(checkpoint).epoch >= 1


def test_a_saved_checkpoint_has_the_permissions_of_any_new_file(good_checkpoint: Path) -> None:
    """Written through a private temporary file, but not left private: a teacher hands checkpoints around."""
    umask = os.umask(0)
    os.umask(umask)
    assert good_checkpoint.stat().st_mode & 0o777 == 0o666 & ~umask


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _zip(path: Path, members: dict[str, str]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return _write(path, buffer.getvalue())


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rnn-tui {version('rnn-tui')}"


def test_save_best_target_is_checked_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n", encoding="utf-8")
    code, err = run_main(["train", "--headless", "--epochs", "1", "--save-best", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "is a directory")
    code, err = run_main(["train", "--headless", "--epochs", "1", "--save-best", str(notes)], capsys)
    assert_one_line_error(code, err, "not an rnn-tui checkpoint")
    assert notes.read_text(encoding="utf-8") == "my notes\n"
    same = str(tmp_path / "run.ckpt")
    code, err = run_main(["train", "--headless", "--epochs", "1", "--save", same, "--save-best", same], capsys)
    assert_one_line_error(code, err, "--save-best")
