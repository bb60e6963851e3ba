"""Fault injection with real faults, no mocks: what a run writes, the signals that end it, the machine's limits.

- Real signals (SIGTERM, SIGHUP, a second one during the save) sent to a real `rnn-tui train --headless`
  subprocess. "During the save" is made deterministic by engine.outputs' test hook ($RNN_TUI_TEST_WRITE_PAUSE):
  the write sleeps after its first chunk, with the temporary file on disk, and the test waits to see that file.
- A real small file system that fills up, and one turned read-only mid-run: tmpfs mounts (root can mount; a
  machine that refuses the mount skips those tests and says why).
- Real unwritable and wrong-kind targets: a read-only mount (root bypasses permission bits, not a read-only
  file system), a path under a regular file, a directory, the corpus, existing files of other kinds.

Every case asserts that no traceback is printed, that the exit code is the documented one, and that nothing the
user had is lost (the previous checkpoint, the corpus, a notes file; the trained weights, rescued if need be).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_bad_inputs import assert_one_line_error, run_main

from engine import checkpoint as checkpoints
from engine.config import TrainConfig
from engine.data.corpus import load_corpus
from engine.limits import usable_cpus
from engine.outputs import PAUSE_ENV
from engine.trainer import Trainer

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "8", "--epochs", "1", "--seed", "0"]


def temporary_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


@pytest.fixture(scope="module")
def previous_checkpoint(tmp_path_factory: pytest.TempPathFactory, corpus_path: Path) -> bytes:
    """The bytes of a small rnn-tui checkpoint: the file a user already has at the --save path."""
    path = tmp_path_factory.mktemp("previous") / "previous.ckpt"
    corpus = load_corpus(corpus_path, 10_000)
    Trainer(TrainConfig(corpus=str(corpus_path), hidden=8, seed=3), corpus).save(str(path))
    return path.read_bytes()


def start(argv: list[str], cwd: Path, **env: str) -> subprocess.Popen[str]:
    """A real `rnn-tui train --headless` that reports every epoch on stdout, in cwd."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "tui.main", "train", "--headless", "--epochs", "1000", "--pred-period", "1"]
    command += ["--pred-len", "2", "--hidden", "64", "--seed", "0", *argv]
    return subprocess.Popen(
        command, cwd=cwd, env={**environment, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_epoch(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    stderr = process.stderr.read() if process.stderr is not None and process.poll() is not None else ""
    assert line.startswith("epoch 1,"), (line, stderr)


def finish(process: subprocess.Popen[str], timeout: float = 60) -> str:
    _, err = process.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return err


# ----- signals -----


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_stops_after_the_batch_and_saves(tmp_path: Path, previous_checkpoint: bytes, signum: int) -> None:
    target = tmp_path / "run.ckpt"
    target.write_bytes(previous_checkpoint)  # ours: replaced without a word
    process = start(["--save", str(target), "--metrics", str(tmp_path / "m.jsonl")], tmp_path)
    wait_for_epoch(process)
    process.send_signal(signum)
    err = finish(process)
    assert process.returncode == 128 + signum, err
    name = signal.Signals(signum).name
    assert f"{name}: stopping after the current batch" in err and "saved checkpoint" in err
    saved = checkpoints.load(target)
    assert saved.epoch >= 1 and saved.config.hidden == 64
    assert (tmp_path / "m.jsonl").read_text().startswith('{"epoch": 1,')
    assert temporary_files(tmp_path) == []


def test_a_second_signal_during_the_save_quits_and_keeps_the_previous_checkpoint(
    tmp_path: Path, previous_checkpoint: bytes
) -> None:
    target = tmp_path / "run.ckpt"
    target.write_bytes(previous_checkpoint)
    process = start(["--save", str(target)], tmp_path, **{PAUSE_ENV: "60"})
    wait_for_epoch(process)
    process.send_signal(signal.SIGTERM)  # stop: the run ends after its batch, then the save begins
    deadline = time.monotonic() + 30
    while not temporary_files(tmp_path):  # the save is under way: its temporary file is half written
        assert time.monotonic() < deadline and process.poll() is None, "the save never began"
        time.sleep(0.02)
    asked = time.monotonic()
    process.send_signal(signal.SIGTERM)
    err = finish(process)
    assert time.monotonic() - asked < 5  # promptly, not after the 60 s the write was held for
    assert process.returncode == 143, err
    assert err.rstrip().endswith("rnn-tui: interrupted")
    assert target.read_bytes() == previous_checkpoint  # the previous checkpoint, whole
    assert temporary_files(tmp_path) == []


def test_kill_9_during_the_save_keeps_the_previous_checkpoint_and_the_next_save_clears_up(
    tmp_path: Path, previous_checkpoint: bytes, corpus_path: Path
) -> None:
    target = tmp_path / "run.ckpt"
    target.write_bytes(previous_checkpoint)
    process = start(["--save", str(target)], tmp_path, **{PAUSE_ENV: "60"})
    wait_for_epoch(process)
    process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while not temporary_files(tmp_path):
        assert time.monotonic() < deadline and process.poll() is None, "the save never began"
        time.sleep(0.02)
    process.kill()  # SIGKILL: nothing can clean up
    process.communicate(timeout=10)
    assert target.read_bytes() == previous_checkpoint
    assert len(temporary_files(tmp_path)) == 1  # left by the killed process, hidden
    corpus = load_corpus(corpus_path, 10_000)
    Trainer(TrainConfig(corpus=str(corpus_path), hidden=8, seed=4), corpus).save(str(target))
    assert temporary_files(tmp_path) == []  # a later save removes what a dead process left
    assert checkpoints.load(target).seed == 4


# ----- a real small file system: full, or turned read-only mid-run -----


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, unmounted afterwards. Needs root (CI runs as root); elsewhere the test is skipped."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'mount failed'}): needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> None:
    """Write zeros until the file system is full."""
    with (folder / "filler").open("wb") as file:
        try:
            while True:
                file.write(b"\0" * 2**20)
                file.flush()
        except OSError:
            pass


@pytest.mark.parametrize("fault", ["disk full", "read-only"])
def test_a_save_that_fails_mid_run_rescues_the_weights(
    tmp_path: Path, small_fs: Path, previous_checkpoint: bytes, fault: str
) -> None:
    target = small_fs / "run.ckpt"
    target.write_bytes(previous_checkpoint)
    work = tmp_path / "work"
    work.mkdir()
    # The metrics go on the small file system too when it fills up; remounting read-only needs no file open on it.
    metrics = small_fs / "m.jsonl" if fault == "disk full" else work / "m.jsonl"
    process = start(["--save", str(target), "--metrics", str(metrics)], work)
    wait_for_epoch(process)
    if fault == "disk full":
        fill(small_fs)
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    process.send_signal(signal.SIGTERM)
    err = finish(process)
    assert process.returncode == 1, err
    reason = "the disk is full" if fault == "disk full" else "the file system is read-only"
    line = next(line for line in err.splitlines() if line.startswith("rnn-tui: error:"))
    assert f"could not write {target}: {reason}" in line and "were saved to" in line, err
    rescued = list(work.glob("run.rescued-*.ckpt"))
    assert len(rescued) == 1 and str(rescued[0]) in line
    assert checkpoints.load(rescued[0]).epoch >= 1  # the trained weights, not lost
    assert target.read_bytes() == previous_checkpoint
    assert temporary_files(small_fs) == []


def test_a_disk_too_small_for_the_checkpoint_is_refused_before_training(
    tmp_path: Path, small_fs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(small_fs)
    code, err = run_main(["train", "--headless", *TINY, "--hidden", "64", "--save", str(small_fs / "x.ckpt")], capsys)
    assert_one_line_error(code, err, f"--save {small_fs / 'x.ckpt'}", "free; the checkpoint needs about")


# ----- targets checked before training -----


@pytest.fixture
def read_only_folder(small_fs: Path) -> Path:
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    return small_fs


def test_wrong_targets_are_refused_before_anything_loads(
    tmp_path: Path, corpus_path: Path, previous_checkpoint: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    checkpoint = tmp_path / "ours.ckpt"
    checkpoint.write_bytes(previous_checkpoint)
    corpus_before = corpus_path.read_bytes()
    cases = [
        (["--save", str(tmp_path)], "is a directory"),
        (["--save", str(notes)], "exists and is not an rnn-tui checkpoint (a 9-byte text file)"),
        (["--save", str(notes / "run.ckpt")], f"{notes} is a file, not a folder"),
        (["--save", str(corpus_path), "--force"], "is the corpus being trained on"),
        (["--metrics", str(corpus_path), "--force"], "is the corpus being trained on"),
        (["--metrics", str(checkpoint)], "exists and is not an rnn-tui metrics file (a "),
        (["--save", str(tmp_path / "a"), "--metrics", str(tmp_path / "a")], "name the same file"),
        (["--save", ""], "--save is empty"),
    ]
    for argv, needle in cases:
        code, err = run_main(["train", "--headless", *TINY, *argv], capsys)
        assert_one_line_error(code, err, needle)
    assert notes.read_text() == "my notes\n" and checkpoint.read_bytes() == previous_checkpoint
    assert corpus_path.read_bytes() == corpus_before


def test_a_read_only_folder_is_refused_before_training(
    read_only_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["--save", str(read_only_folder / "x.ckpt")], ["--metrics", str(read_only_folder / "new" / "m")]):
        code, err = run_main(["train", "--headless", *TINY, *argv], capsys)
        assert_one_line_error(code, err, "on a read-only file system")


def test_metrics_in_a_folder_not_made_yet_is_written_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The check accepts a folder it can create; the run then creates it, as --save does (it said "its folder no
    longer exists" after training)."""
    metrics = tmp_path / "runs" / "today" / "m.jsonl"
    code, err = run_main(["train", "--headless", *TINY, "--metrics", str(metrics)], capsys)
    assert code == 0, err
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [1]


def test_force_replaces_a_file_that_is_not_ours_then_it_is_ours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    code, err = run_main(["train", "--headless", *TINY, "--save", str(notes), "--force"], capsys)
    assert code == 0 and "saved checkpoint" in err, err
    assert checkpoints.load(notes).epoch == 1
    code, err = run_main(["train", "--headless", *TINY, "--save", str(notes)], capsys)  # ours now: no --force
    assert code == 0 and "saved checkpoint" in err, err
    assert temporary_files(tmp_path) == []


# ----- what the machine cannot do -----


def test_machine_limits_are_refused_with_the_reason(
    tmp_path: Path, previous_checkpoint: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        (["--seed", str(2**64)], "seed must be between -9223372036854775808 and 18446744073709551613"),
        (["--threads", str(usable_cpus() + 1)], f"threads must be at most {usable_cpus()}, the CPU cores"),
        (["--hidden", "200000"], "needs about"),
        (["--hidden", "1024", "--layers", "2000"], "1,024 hidden, 2000 layers"),
    ]
    for argv, needle in cases:
        code, err = run_main(["train", "--headless", *TINY, *argv], capsys)
        assert_one_line_error(code, err, needle)
    checkpoint = tmp_path / "run.ckpt"
    checkpoint.write_bytes(previous_checkpoint)
    code, err = run_main(["generate", "--checkpoint", str(checkpoint), "--seed", str(2**64)], capsys)
    assert_one_line_error(code, err, "seed must be between")
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(65 * 2**20)  # sparse: no disk, never read
    code, err = run_main(["train", "--headless", *TINY, "--corpus", str(huge), "--max-chars", "40000000"], capsys)
    assert_one_line_error(code, err, "65 MiB", "at most 33,554,432 characters are kept, got --max-chars 40,000,000")


def test_a_setting_that_does_nothing_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(["train", "--headless", *TINY, "--dropout", "0.3"], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("rnn-tui: warning:")]
    assert warnings == [
        "rnn-tui: warning: dropout 0.3 does nothing with 1 layer: it acts between layers (use layers 2 or more)"
    ]


def test_metrics_on_a_full_disk_are_a_warning_and_the_run_goes_on(
    tmp_path: Path, small_fs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(small_fs)
    target = tmp_path / "run.ckpt"
    argv = [
        "train",
        "--headless",
        *TINY,
        "--epochs",
        "2",
        "--metrics",
        str(small_fs / "m.jsonl"),
        "--save",
        str(target),
    ]
    code, err = run_main(argv, capsys)
    assert code == 0, err
    warning = f"rnn-tui: warning: could not write metrics to {small_fs / 'm.jsonl'}: the disk is full; the run goes on"
    assert [line for line in err.splitlines() if "warning" in line] == [warning + " without them"]
    assert checkpoints.load(target).epoch == 2  # trained to the end and saved


def test_files_of_ours_are_recognised_cheaply(tmp_path: Path, previous_checkpoint: bytes) -> None:
    """What counts as ours, per kind: never by unpickling, and an empty file has nothing to lose."""
    import sqlite3

    from engine.outputs import NotOursError, check_output_target

    files = {
        "run.ckpt": previous_checkpoint,
        "m.jsonl": b'{"epoch": 1, "perplexity": 9.5}\n',
        "runs.csv": b"epoch,cell=rnn\n1,9.5\n",
        "empty": b"",
        "notes.txt": b"my notes\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    study = tmp_path / "study.db"
    with sqlite3.connect(study) as connection:
        connection.execute("CREATE TABLE studies (study_id INTEGER)")
    ours = {"checkpoint": "run.ckpt", "metrics": "m.jsonl", "csv": "runs.csv", "optuna-sqlite": "study.db"}
    for kind, own in ours.items():
        for name in [*files, "study.db"]:
            if name in (own, "empty"):
                assert check_output_target(tmp_path / name, kind) == tmp_path / name
            else:
                with pytest.raises(NotOursError):
                    check_output_target(tmp_path / name, kind)
