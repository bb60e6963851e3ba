"""`rnn-tui sweep`: the search space, bad inputs, and real studies on the real corpus.

Real SQLite studies with two worker processes, a real PostgreSQL server started here (two `rnn-tui sweep`
processes joining one study), an absurd learning rate that diverges while the sweep finishes, stopping with
SIGTERM and continuing with the same command, a worker killed mid-trial. Faults: the PostgreSQL server stopped
for 20 s under two commands and for good, a whole command kill -9'd (its trial found by the other's heartbeat
check, or by --reap), SIGTERM to one worker, the monitor killed, a study's identity, a read-only file, and the
ready command re-run to the last digit. Trials are tiny (16 hidden units,
a few thousand characters, 2-3 epochs): what costs time is starting processes, not training.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine.config import SETTINGS_BY_NAME
from engine.errors import ConfigError
from engine.sweep import (
    OBJECTIVE_FALLBACK,
    OBJECTIVE_HELDOUT,
    Param,
    build_space,
    make_pruner,
    parse_search,
    read_space_file,
    resolve_storage,
)
from tui.cli import parse, run_command

if TYPE_CHECKING:  # optuna loads in the tests that open a study
    from optuna.trial import FrozenTrial

# One torch thread per worker: on a loaded two-core machine an OpenMP team of two spins and stalls.
TINY = ["--hidden", "16", "--max-chars", "4000", "--seed", "0", "--threads", "1"]
# The distribution's PostgreSQL (15 on Debian 12; .ci/run installs it when missing), newest version first.
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=Path("/nonexistent"))


def sweep_command(*flags: str) -> list[str]:
    return [sys.executable, "-m", "tui.main", "sweep", *TINY, *flags]


def run_sweep(*flags: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sweep_command(*flags), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def load_trials(storage: str, study: str) -> list[FrozenTrial]:
    """A study's trials, read through an engine closed at once: an RDBStorage left to the garbage collector keeps
    its connection open until a full collection, and a test that polls can use up a server's connections."""
    import optuna

    rdb = optuna.storages.RDBStorage(storage)
    try:
        return optuna.load_study(study_name=study, storage=rdb).get_trials()
    finally:
        rdb.engine.dispose()


def trial_lines(output: str) -> list[str]:
    """The lines of finished trials (not the line each trial starts with)."""
    return [line for line in output.splitlines() if line.startswith("trial ") and line.split()[2] != "starts"]


# The held-out engine comes with the --val-chars flag: from then on every trial must be ranked by held-out figures.
HELDOUT_ENGINE = "val_chars" in SETTINGS_BY_NAME


def trial_value(trial: FrozenTrial) -> float:
    """A complete trial's value (its objective)."""
    assert trial.value is not None, trial.number
    return trial.value


def check_objective(trial: FrozenTrial) -> None:
    """A complete trial's value is its best held-out perplexity; without held-out figures the fallback is named."""
    history = trial.user_attrs["history"]
    heldout = [h["val_perplexity"] for h in history if h["val_perplexity"] is not None]
    if HELDOUT_ENGINE:
        assert len(heldout) == len(history), "the engine reports held-out perplexity: every epoch must have one"
    if heldout:
        assert trial.user_attrs["objective"] == OBJECTIVE_HELDOUT
        assert trial.value == pytest.approx(min(heldout))
    else:  # the held-out engine has not landed: the trial says it ranks by training perplexity
        assert trial.user_attrs["objective"] == OBJECTIVE_FALLBACK
        assert trial.value == pytest.approx(min(h["perplexity"] for h in history))


# ----- the search space -----


def test_short_forms_parse_to_ranges_and_choices() -> None:
    lr = parse_search("lr=1e-4:1e-2:log")
    assert lr == Param("lr", 1e-4, 1e-2, log=True)
    assert parse_search("num-steps=16:64:8") == Param("num_steps", 16, 64, step=8)
    assert parse_search("cell=rnn,gru,lstm") == Param("cell", choices=("rnn", "gru", "lstm"))
    assert parse_search("clip=0,0.1,1") == Param("clip", choices=(0.0, 0.1, 1.0))
    assert parse_search("hidden=128") == ("hidden", 128)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr=1e-2:1e-4", "lr=0.01:0.0001 is an empty range"),
        ("hidden=64:64", "empty range"),
        ("foo=1:2", "unknown parameter 'foo'"),
        ("lr=0:1:log", "log scale needs low > 0"),
        ("hidden=1.5:8", "hidden wants a whole number"),
        ("cell=rnn,transformer", "cell must be among rnn, gru, lstm"),
        ("lr", "is not NAME=SPEC"),
        ("lr=", "lr has an empty range"),
        ("dropout=0:1", "dropout must be in [0, 1)"),
    ],
)
def test_bad_space_entries_are_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        parse_search(text)


def test_space_files_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "space.toml"
    toml.write_text('lr = "1e-4:1e-2:log"\ncell = ["gru", "lstm"]\n[hidden]\nlow = 32\nhigh = 256\nlog = true\n')
    as_json = tmp_path / "space.json"
    as_json.write_text(json.dumps({"lr": {"low": 1e-4, "high": 1e-2, "log": True}, "cell": ["gru", "lstm"]}))
    from_toml = read_space_file(toml)
    assert Param("hidden", 32, 256, log=True) in from_toml
    assert read_space_file(as_json) == from_toml[:2]
    # --search overrides the file's entry of the same name; a flag cannot fix what the space varies.
    space = build_space({}, str(toml), ["hidden=64,128"])
    assert space.describe() == "lr=0.0001:0.01:log cell=gru,lstm hidden=64,128"
    with pytest.raises(ConfigError, match="--hidden fixes what the search space varies"):
        build_space({"hidden": 64}, str(toml))
    (tmp_path / "empty.toml").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        read_space_file(tmp_path / "empty.toml")


def test_default_space_leaves_out_what_flags_fix() -> None:
    space = build_space({"cell": "gru", "epochs": 20})
    assert "cell" not in space.names
    assert set(space.names) == {"lr", "hidden", "layers", "dropout", "num_steps", "clip"}
    sgd = build_space({"optimizer": "sgd"})
    assert sgd.params[0] == Param("lr", 1e-2, 10.0, log=True)  # SGD's rates sit far above Adam's


def test_plain_postgresql_urls_use_psycopg3() -> None:
    url, notes = resolve_storage("postgresql://class:pw@db.lab:5432/rnn")
    assert url == "postgresql+psycopg://class:pw@db.lab:5432/rnn" and notes
    url, _ = resolve_storage(None, Path("/data"))
    assert url == "sqlite:////data/rnn-tui-sweeps.db"


@pytest.mark.parametrize("name", ["median", "halving"])
def test_each_pruner_stops_trials_worse_than_the_earlier_ones_early(name: str) -> None:
    """The pruners as --pruner builds them, in a real Optuna study: trials reporting a perplexity ten times the
    earlier ones' are stopped before their last epoch; trials each a little better than the last run to the end."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    epochs = 9
    study = optuna.create_study(pruner=make_pruner(name, epochs), sampler=optuna.samplers.RandomSampler(seed=0))
    stopped_at: dict[int, int] = {}

    def objective(trial: optuna.Trial) -> float:
        scale = 1000.0 if trial.number >= 6 else 100.0 - trial.number
        for epoch in range(1, epochs + 1):
            trial.report(scale / epoch, epoch)
            if trial.should_prune():
                stopped_at[trial.number] = epoch
                raise optuna.TrialPruned()
        return scale / epochs

    study.optimize(objective, n_trials=9)
    states = [trial.state.name for trial in study.trials]
    assert states[6:] == ["PRUNED"] * 3 and all(stopped_at[n] < epochs for n in (6, 7, 8)), (states, stopped_at)
    assert states[:6] == ["COMPLETE"] * 6


# ----- bad input on the command line: one line, exit 2 -----


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--storage", "nonsense"], "malformed storage URL 'nonsense'"),
        (["--storage", "nonsense://"], "unknown database kind 'nonsense'"),
        (["--storage", "postgresql://u:secret@127.0.0.1:1/db"], "cannot open storage postgresql+psycopg://u:***@"),
        (["--search", "lr=1e-2:1e-4"], "empty range"),
        (["--search", "width=1:2"], "unknown parameter 'width'"),
        (["--jobs", "0"], "--jobs must be a whole number ≥ 1, got 0"),
        (["--trials", "0"], "--trials must be a whole number ≥ 1, got 0"),
        (["--resume", "x.ckpt"], "--resume does not apply to a sweep"),
        (["--lr", "0"], "lr must be > 0"),
        (["--metrics", "."], "--metrics . is a directory"),
        (["--save", "."], "--save . is a directory; give a file name (trial N saves NAME.trial-N.ckpt)"),
        (["--save", "runs/a.ckpt", "--metrics", "runs/a.trial-0.ckpt"], "name the same file"),
    ],
)
def test_bad_sweep_inputs_say_one_line_and_exit_2(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run_command(parse(["sweep", *flags]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rnn-tui: error:") and message in err[-1]
    assert "Traceback" not in "\n".join(err) and "secret" not in err[-1]


# ----- real studies -----


def test_two_worker_processes_share_a_sqlite_study_and_an_absurd_lr_is_pruned(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    # lr 40 with Adam diverges in its first batches; seeded TPE draws both values in its first trials.
    flags = ["--epochs", "2", "--trials", "6", "--jobs", "2", "--storage", storage, "--study", "book"]
    flags += ["--search", "lr=0.003,40", "--search", "cell=rnn,gru", "--sampler-seed", "3"]
    result = run_sweep(*flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    trials = load_trials(storage, "book")
    assert len(trials) == 6
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both worker processes ran trials
    absurd = [t for t in trials if t.params["lr"] == 40]
    sane = [t for t in trials if t.params["lr"] == 0.003]
    assert absurd and sane, "the seeded sampler should draw both learning rates"
    for trial in absurd:
        assert trial.state.name == "PRUNED"
        assert "training diverged" in trial.user_attrs["reason"]
    for trial in sane:
        assert trial.state.name == "COMPLETE"
        assert [h["epoch"] for h in trial.user_attrs["history"]] == [1, 2]
        check_objective(trial)
    # One line per finished trial; the best as a ready command line that names the searched settings.
    lines = trial_lines(result.stdout)
    assert sorted(int(line.split()[1]) for line in lines) == list(range(6))
    best = min(sane, key=trial_value)
    assert f"best: trial {best.number}," in result.stdout
    command = result.stdout.strip().splitlines()[-1].strip()
    assert command.startswith("rnn-tui train --headless") and "--lr 0.003" in command
    assert f"--cell {best.params['cell']}" in command and "--hidden 16" in command


def test_sigterm_stops_cleanly_and_the_same_command_continues(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    # Trials of a few seconds: long enough to be caught running.
    flags = [
        "--epochs",
        "30",
        "--max-chars",
        "10000",
        "--trials",
        "2",
        "--storage",
        storage,
        "--search",
        "cell=rnn,gru",
    ]
    process = subprocess.Popen(sweep_command(*flags), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _running(storage) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _running(storage), "no trial started"
        time.sleep(1)  # into its epochs
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert b"Traceback" not in err
    trials = load_trials(storage, "rnn-tui")
    stopped = [t for t in trials if t.state.name == "FAIL"]
    waiting = [t for t in trials if t.state.name == "WAITING"]
    assert len(stopped) == 1 and "stopped by SIGTERM" in stopped[0].user_attrs["reason"]
    assert len(waiting) == 1 and waiting[0].system_attrs["fixed_params"] == stopped[0].params  # queued again
    assert b"the same command continues" in out
    # The same command continues the study: the queued settings train first.
    result = run_sweep(*flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 earlier trials, continuing" in result.stdout
    trials = load_trials(storage, "rnn-tui")
    requeued = next(t for t in trials if t.user_attrs.get("requeued_from") == stopped[0].number)
    assert requeued.state.name == "COMPLETE" and requeued.params == stopped[0].params
    assert [t.state.name for t in trials].count("COMPLETE") == 2


def _running(storage: str) -> bool:
    """A trial is running (read with sqlite3: opening the study with Optuna would race to create its tables)."""
    import sqlite3

    path = storage.removeprefix("sqlite:///")
    if not Path(path).exists():
        return False
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return bool(db.execute("select count(*) from trials where state = 'RUNNING'").fetchone()[0])
    except sqlite3.Error:  # the tables are not made yet
        return False


def test_a_killed_worker_leaves_the_study_usable(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    flags = ["--epochs", "30", "--max-chars", "10000", "--trials", "3", "--jobs", "2", "--storage", storage]
    process = subprocess.Popen(
        sweep_command(*flags, "--search", "cell=rnn,gru"), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        pid = None
        while pid is None and process.poll() is None and time.monotonic() < deadline:
            pid = _running_pid(storage)
            time.sleep(0.2)
        assert pid is not None, "no trial started"
        os.kill(pid, signal.SIGKILL)  # a worker dies mid-trial, as on a crash or the OOM killer
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert b"Traceback" not in err
    assert b"failed: its worker process ended (signal SIGKILL); queued again" in out
    trials = load_trials(storage, "rnn-tui")
    killed = next(t for t in trials if t.user_attrs.get("pid") == pid)
    assert killed.state.name == "FAIL" and "worker process ended" in killed.user_attrs["reason"]
    # The other worker went on: the study finished its budget, the killed trial's settings trained again.
    assert any(t.state.name == "COMPLETE" and t.user_attrs.get("requeued_from") == killed.number for t in trials)
    assert b"a new worker process takes its place" in out
    assert process.returncode == 0  # the lost worker was replaced and the budget ran
    assert [t.state.name for t in trials].count("COMPLETE") == 3  # a lost trial is not counted: 3 ran to an end


def _running_pid(storage: str) -> int | None:
    import sqlite3

    path = storage.removeprefix("sqlite:///")
    if not Path(path).exists():
        return None
    try:
        with sqlite3.connect(path, timeout=5) as db:
            row = db.execute(
                "select a.value_json from trials t join trial_user_attributes a on a.trial_id = t.trial_id "
                "where t.state = 'RUNNING' and a.key = 'pid'"
            ).fetchone()
    except sqlite3.Error:
        return None
    return int(json.loads(row[0])) if row else None


# ----- a real PostgreSQL server, two `rnn-tui sweep` processes joining one study -----


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(*command: str) -> list[str]:
    # PostgreSQL refuses to run as root: as root, run its tools as the postgres user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


class PostgresServer:
    """A test's own PostgreSQL server; stop() and start() put it through an outage."""

    def __init__(self, url: str, control: list[str], env: dict[str, str]) -> None:
        self.url, self.control, self.env = url, control, env

    def stop(self) -> None:
        subprocess.run([*self.control, "-m", "fast", "-w", "stop"], check=True, capture_output=True, env=self.env)

    def start(self) -> None:
        subprocess.run([*self.control, "-w", "start"], check=True, capture_output=True, env=self.env, timeout=120)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.url


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own, on 127.0.0.1 and a free port, its data in a temporary directory."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): .ci/run installs it")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: PostgreSQL cannot be started as root")
    base = Path(tempfile.mkdtemp(prefix="rnn-tui-pg-"))
    data, log = base / "data", base / "server.log"
    os.chmod(base, 0o755)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C"}
    initdb = [
        str(PG_BIN / "initdb"),
        "-D",
        str(data),
        "-A",
        "trust",
        "-U",
        "postgres",
        "-N",
        "-E",
        "UTF8",
        "--no-locale",
    ]
    subprocess.run(
        _as_postgres(*initdb),
        check=True, capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
    subprocess.run(
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"),
        check=True, capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    try:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as connection:
            connection.execute("CREATE DATABASE sweeps")
        control = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options)
        yield PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/sweeps", control, env)
    finally:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"),
            capture_output=True, env=env, timeout=60,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def test_two_sweep_processes_join_one_postgresql_study(postgres_url: str, tmp_path: Path) -> None:
    flags = ["--epochs", "2", "--trials", "2", "--storage", postgres_url, "--study", "class"]
    flags += ["--search", "lr=1e-3:1e-2:log", "--search", "cell=rnn,gru"]
    # A second study in the same database: its trials never mix with the class's.
    other = run_sweep("--epochs", "1", "--trials", "1", "--storage", postgres_url, "--study", "other",
                      "--search", "cell=lstm,gru", cwd=tmp_path)  # fmt: skip
    assert other.returncode == 0, other.stderr
    first = subprocess.Popen(sweep_command(*flags), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second = subprocess.Popen(sweep_command(*flags), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    for process, (_out, err) in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, err.decode()
        assert b"read as postgresql+psycopg://" in err
    storage = resolve_storage(postgres_url)[0]
    trials = load_trials(storage, "class")
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    assert all(t.params["cell"] != "lstm" for t in trials)
    for trial in trials:
        check_objective(trial)
    # The process that finished last lists the other's trials too.
    last_out = max(outputs, key=lambda o: len(trial_lines(o[0].decode())))[0].decode()
    assert len(trial_lines(last_out)) >= 3
    assert [t.params["cell"] for t in load_trials(storage, "other")] in (["lstm"], ["gru"])
    # A study cannot be continued with other fixed settings: its trials would not compare.
    clash = run_sweep(*flags[:-4], "--cell", "gru", "--search", "lr=1e-3:1e-2:log", cwd=tmp_path)
    assert clash.returncode == 2
    assert "study 'class' searches lr=0.001:0.01:log cell=rnn,gru, this command lr=0.001:0.01:log" in clash.stderr
    assert clash.stderr.strip().splitlines()[-1].startswith("rnn-tui: error: study 'class'")  # after the driver note


def _pg_running(url: str) -> int:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            row = connection.execute("select count(*) from trials where state = 'RUNNING'").fetchone()
    except psycopg.Error:  # no tables yet
        return 0
    return int(row[0]) if row else 0


def test_a_20_second_postgresql_outage_is_waited_out_by_two_commands(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """The server stopped (fast: connections cut) for 20 s while both commands train: each waits, says so in a
    line, and finishes its budget; no traceback, no trial left RUNNING."""
    flags = ["--epochs", "30", "--max-chars", "10000", "--trials", "3", "--storage", postgres_server.url]
    flags += ["--study", "outage", "--search", "lr=1e-3:1e-2:log", "--pruner", "none", "--storage-patience", "90"]
    commands = [
        subprocess.Popen(sweep_command(*flags), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 90
        running = 0
        # The count seen, not a second query: trials of a second or two may both end between two queries.
        while running < 2 and time.monotonic() < deadline:
            running = _pg_running(postgres_server.url)
            time.sleep(0.3)
        if running < 2:  # say why: the output of a command that ended
            ended = [c.communicate(timeout=30) for c in commands if c.poll() is not None]
            pytest.fail(f"both commands should be training; {running} are; ended: {ended}")
        postgres_server.stop()
        time.sleep(20)
        postgres_server.start()
        outputs = [command.communicate(timeout=300) for command in commands]
    finally:
        for command in commands:
            if command.poll() is None:
                command.kill()
    for command, (out, err) in zip(commands, outputs, strict=True):
        assert command.returncode == 0, out + err
        assert "Traceback" not in out + err and "updated_state" not in out + err
        assert "database unreachable" in out and "retrying for" in out
        # Once per outage, in order: the monitor's line and its worker's (which reaches it late) are one.
        said = [line.split(" (")[0].split(" after")[0] for line in out.splitlines() if line.startswith("database ")]
        assert said == ["database unreachable", "database reachable again"], out
    trials = load_trials(resolve_storage(postgres_server.url)[0], "outage")
    states = [(t.number, t.state.name) for t in trials]
    # Nothing lost: the two trials running through the outage finished and were recorded, as the four after them.
    assert [state for _, state in states] == ["COMPLETE"] * 6, (states, outputs)
    assert all(t.state.name != "RUNNING" for t in trials)


def test_a_database_gone_past_the_patience_ends_the_sweep_in_one_line_with_exit_3(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    flags = ["--epochs", "30", "--max-chars", "10000", "--trials", "2", "--storage", postgres_server.url]
    flags += ["--study", "gone", "--search", "lr=1e-3:1e-2:log", "--storage-patience", "5"]
    command = subprocess.Popen(
        sweep_command(*flags), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while _pg_running(postgres_server.url) < 1 and time.monotonic() < deadline:
            time.sleep(0.3)
        postgres_server.stop()
        out, err = command.communicate(timeout=120)
    finally:
        if command.poll() is None:
            command.kill()
    assert command.returncode == 3, out + err
    assert "Traceback" not in out + err
    assert "database unreachable (" in out and "retrying for 5 more seconds" in out
    assert out.strip().splitlines()[-1].startswith("rnn-tui sweep: database unreachable for 5 s (")
    assert "giving up (--storage-patience)" in out


def test_a_killed_command_is_noticed_by_the_other_and_its_trial_run_again(tmp_path: Path) -> None:
    """Two commands on one study; one is kill -9'd whole (monitor and worker, as a machine lost): the other fails
    its trial with the reason within the grace period, and runs its settings again."""
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    flags = ["--epochs", "30", "--max-chars", "10000", "--storage", storage, "--study", "lab", "--grace", "4"]
    flags += ["--search", "lr=1e-3:1e-2:log", "--pruner", "none"]
    lost = subprocess.Popen(
        sweep_command(*flags, "--trials", "2"), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    other = None
    try:
        deadline = time.monotonic() + 60
        pid = None
        while pid is None and time.monotonic() < deadline:
            pid = _running_pid(storage)
            time.sleep(0.2)
        assert pid is not None and os.getpgid(pid) == lost.pid, "the first command's trial should be running"
        # A budget that outlasts the grace period however fast trials run (on a quiet machine one takes about a
        # second): the other command is still asking for trials when the lost one is failed and queued again.
        other = subprocess.Popen(
            sweep_command(*flags, "--trials", "10"), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        time.sleep(1)
        os.killpg(lost.pid, signal.SIGKILL)
        killed_at = datetime.now()  # naive local time, as Optuna stamps datetime_complete
        lost.wait(timeout=10)
        out, err = other.communicate(timeout=240)
    finally:
        for process in (lost, other):
            if process is not None and process.poll() is None:
                process.kill()
    assert other.returncode == 0, out + err
    assert "Traceback" not in out + err
    trials = load_trials(storage, "lab")
    killed = next(t for t in trials if t.user_attrs.get("pid") == pid)
    assert killed.state.name == "FAIL", out
    assert f"no heartbeat from {socket.gethostname()} (pid {pid}) for over 4 s" in killed.user_attrs["reason"]
    assert f"trial {killed.number:>3}  failed: lost: no heartbeat" in out
    # Failed within the grace period (4 s) of its last heartbeat; slack for a loaded machine's polls.
    assert killed.datetime_complete is not None and (killed.datetime_complete - killed_at).total_seconds() < 4 + 6
    again = next(t for t in trials if t.user_attrs.get("requeued_from") == killed.number)
    assert again.state.name == "COMPLETE" and again.params == killed.params and again.user_attrs["pid"] != pid
    assert all(t.state.name != "RUNNING" for t in trials)


def test_the_ready_command_reproduces_the_best_trial_to_the_last_digit(tmp_path: Path) -> None:
    """Fixed --search values, the searched ones, the seed and the trial's epochs are all in the ready command; run on
    this machine it names the trial's best epoch and held-out perplexity digit for digit (--save-best)."""
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    flags = ["--epochs", "3", "--trials", "2", "--storage", storage, "--pruner", "none"]
    flags += ["--search", "hidden=32", "--search", "cell=gru", "--search", "lr=1e-3:1e-2:log"]
    result = run_sweep(*flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    best_line = next(line for line in result.stdout.splitlines() if line.startswith("best: trial"))
    figure = best_line.split("held-out perplexity ")[1].split()[0]
    command = shlex.split(result.stdout.strip().splitlines()[-1])
    assert command[:3] == ["rnn-tui", "train", "--headless"]
    shown = " ".join(command)
    assert "--cell gru" in shown and "--hidden 32" in shown and "--seed " in shown and "--max-chars 4000" in shown
    trial = next(t for t in load_trials(storage, "rnn-tui") if f"best: trial {t.number}," in best_line)
    assert f"--seed {trial.user_attrs['seed']}" in shown
    again = subprocess.run(
        [sys.executable, "-m", "tui.main", *command[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    epoch = best_line.split("(epoch ")[1].split(")")[0]
    saved = f"saved the best held-out epoch to trial-{trial.number}-best.ckpt (epoch {epoch}, held-out perplexity "
    assert f"{saved}{figure})" in again.stdout + again.stderr, again.stdout + again.stderr


def test_a_study_refuses_another_corpus_space_or_epochs_and_a_read_only_file_is_one_line(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    flags = ["--epochs", "1", "--storage", storage, "--study", "lyrics"]
    first = run_sweep(*flags, "--trials", "1", "--search", "lr=1e-3:1e-2:log", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    import optuna

    identity = optuna.load_study(study_name="lyrics", storage=storage).user_attrs["identity"]
    assert identity["corpus"] == "jaychou_lyrics.txt.zip" and len(identity["corpus_sha256"]) == 64
    assert identity["held_out"]["val_chars"] == 1500 and identity["epochs"] == 1
    cases = [
        (["--corpus", str(Path(__file__).parents[1] / "engine" / "data" / "corpora" / "timemachine.txt")],
         "study 'lyrics' trains on jaychou_lyrics.txt.zip (sha256 ", "--study lyrics-timemachine"),
        (["--search", "lr=1e-3:1e-1:log"], "searches lr=0.001:0.01:log, this command lr=0.001:0.1:log",
         "--study lyrics-space2"),
        (["--epochs", "2", "--search", "lr=1e-3:1e-2:log"], "trains 1 epochs a trial, this command 2",
         "--study lyrics-2ep"),
    ]  # fmt: skip
    for extra, message, suggestion in cases:
        clash = run_sweep(*flags, "--trials", "1", *extra, cwd=tmp_path)
        assert clash.returncode == 2, clash.stdout + clash.stderr
        lines = clash.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and suggestion in lines[0], lines
    read_only = f"sqlite:///file:{tmp_path / 'sweeps.db'}?mode=ro&uri=true"
    result = run_sweep("--epochs", "1", "--storage", read_only, "--study", "new", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is read-only" in lines[0] and "Traceback" not in result.stderr, lines


def _start_and_wait_for_a_trial(flags: list[str], storage: str, cwd: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        sweep_command(*flags), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    pid = None
    while pid is None and process.poll() is None and time.monotonic() < deadline:
        pid = _running_pid(storage)
        time.sleep(0.2)
    if pid is None:
        process.kill()
        pytest.fail(f"no trial started: {process.communicate()}")
    return process, pid


def test_sigterm_to_a_worker_is_not_success_it_is_replaced_and_the_budget_runs(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    flags = ["--epochs", "30", "--max-chars", "10000", "--trials", "2", "--storage", storage, "--pruner", "none"]
    process, pid = _start_and_wait_for_a_trial([*flags, "--search", "cell=rnn,gru"], storage, tmp_path)
    try:
        os.kill(pid, signal.SIGTERM)  # the worker alone (an administrator, a job system), not the command
        out, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out + err
    assert "Traceback" not in out + err
    assert "worker 0 ended (signal SIGTERM" in out or "worker 0 ended (exit code 143)" in out, out
    assert "a new worker process takes its place" in out
    trials = load_trials(storage, "rnn-tui")
    stopped = next(t for t in trials if t.user_attrs.get("pid") == pid)
    assert stopped.state.name == "FAIL" and stopped.user_attrs["reason"] == "stopped by SIGTERM; queued again"
    again = next(t for t in trials if t.user_attrs.get("requeued_from") == stopped.number)
    assert again.state.name == "COMPLETE" and again.params == stopped.params
    assert [t.state.name for t in trials].count("COMPLETE") == 2  # the stopped trial did not count


def test_a_killed_monitor_is_not_a_user_stop_and_reap_fails_a_lost_machines_trial(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    flags = ["--epochs", "30", "--max-chars", "10000", "--storage", storage, "--grace", "4", "--pruner", "none"]
    flags += ["--search", "lr=1e-3:1e-2:log"]
    # kill -9 of the monitor alone: its worker notices within a second and records why its trial ended.
    process, pid = _start_and_wait_for_a_trial([*flags, "--trials", "2"], storage, tmp_path)
    process.kill()
    process.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while _running_pid(storage) is not None and time.monotonic() < deadline:
        time.sleep(0.3)
    trials = load_trials(storage, "rnn-tui")
    first = next(t for t in trials if t.user_attrs.get("pid") == pid)
    assert first.state.name == "FAIL", first.state
    assert first.user_attrs["reason"] == f"its sweep command (pid {process.pid}) ended; queued again"
    # kill -9 of the whole command (a machine lost): nothing of it is left to record anything; `--reap` fails the
    # trial once its heartbeat is older than the grace period.
    process, pid = _start_and_wait_for_a_trial([*flags, "--trials", "2"], storage, tmp_path)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    early = run_sweep(*flags, "--reap", cwd=tmp_path)
    assert early.returncode == 0 and "0 lost trials failed and queued again; 1 running" in early.stdout, early
    time.sleep(4 + 2)
    reaped = run_sweep(*flags, "--reap", cwd=tmp_path)
    assert reaped.returncode == 0, reaped.stderr
    assert "Traceback" not in reaped.stdout + reaped.stderr
    trials = load_trials(storage, "rnn-tui")
    lost = next(t for t in trials if t.user_attrs.get("pid") == pid)
    assert (
        f"trial {lost.number:>3}  failed: lost: no heartbeat from {socket.gethostname()} (pid {pid})" in reaped.stdout
    )
    assert lost.state.name == "FAIL" and "for over 4 s; queued again" in lost.user_attrs["reason"]
    waiting = [t for t in trials if t.state.name == "WAITING"]
    # The second command trained the first's queued settings first; lost again, they are queued again.
    assert lost.user_attrs["requeued_from"] == first.number and lost.params == first.params
    assert [(t.user_attrs["requeued_from"], t.system_attrs["fixed_params"]) for t in waiting] == [
        (lost.number, lost.params)
    ]


def test_progress_reaches_the_caller_as_callbacks_with_epochs_and_etas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine prints nothing: the lines and the live progress line come to run_sweep's callbacks (the command
    line prints them; a terminal shows the live one in place)."""
    from engine.sweep import SweepSpec, build_space
    from engine.sweep import run_sweep as sweep

    monkeypatch.chdir(tmp_path)
    fixed = {"hidden": 16, "max_chars": 4000, "seed": 0, "epochs": 3}
    spec = SweepSpec(
        fixed=fixed, space=build_space(fixed, None, ["lr=1e-3:1e-2:log"]), study="progress",
        storage=f"sqlite:///{tmp_path / 'sweeps.db'}", trials=2, timeout=None, jobs=1, threads=1, pruner="none",
    )  # fmt: skip
    lines: list[str] = []
    live: list[str] = []
    assert sweep(spec, lines.append, live.append) == 0, lines
    assert [line.split()[1] for line in lines if " starts " in line] == ["0", "1"]
    epochs = [line for line in live if " epoch " in line]
    shown = list(dict.fromkeys(" ".join(line.split()[:4]) for line in epochs))  # the line is redrawn with the ETA
    assert shown == [f"trial {n} epoch {e}/3" for n in (0, 1) for e in (1, 2, 3)], epochs
    assert all(" ETA " in line for line in epochs)
    # After trial 0, the time left for the budget stays on the live line, behind the running trial.
    assert any(line.startswith("trial 1 epoch") and line.endswith(" for the 1 trial left") for line in live), live
