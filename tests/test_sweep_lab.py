"""A lab's shared study (issue 30): liveness judged by each trial's own grace, a study creation that cannot be raced,
identities compared by meaning, a password that never shows, outage lines once and in order, the small limits.

Real commands on the real corpus against SQLite and a real PostgreSQL server (test_sweep's fixture).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_sweep import PostgresServer, postgres_server, sweep_command

from engine.sweep import resolve_storage

__all__ = ["postgres_server"]  # the fixture, used by name below


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A study storage of each kind: a SQLite file, a PostgreSQL database of a server started here."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sweeps.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        yield server.url


class StudyReads:
    """A test's reads of one study, all through one database engine, closed at the end.

    Not a new engine per read: an Optuna RDBStorage nobody disposes keeps its pooled connection open until the
    garbage collector's full collection, rare in a test process with a large heap (the whole suite's). Polling twice
    a second that way used up the test server's 50 connections: every later connection, the sweeps' included, was
    refused ("sorry, too many clients already"), B took that for an outage and waited one grace after each before
    reaping, and the test's own reads failed. A read that fails reads as no trials and its error is kept, to be
    named by the assertion that then fails. It creates no tables: the sweep it watches does.
    """

    def __init__(self, storage: str, study: str) -> None:
        self.url, self.study = resolve_storage(storage)[0], study
        self.rdb: Any = None
        self.errors: list[str] = []

    def trials(self) -> list[Any]:
        import optuna

        try:
            if self.rdb is None:  # the sweep creates the tables (a reader racing it to do so could fail it)
                self.rdb = optuna.storages.RDBStorage(self.url, skip_table_creation=True)
            return optuna.load_study(study_name=self.study, storage=self.rdb).get_trials()
        except Exception as exc:  # not created yet, or the database busy: look again
            self.errors.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
            return []

    def running_of(self, pid_of_group: int) -> Any:
        for trial in self.trials():
            pid = trial.user_attrs.get("pid")
            if trial.state.name == "RUNNING" and pid is not None:
                try:
                    if os.getpgid(int(pid)) == pid_of_group:
                        return trial
                except ProcessLookupError:
                    continue
        return None

    def last_errors(self) -> list[str]:
        return self.errors[-3:]

    def close(self) -> None:
        if self.rdb is not None:
            self.rdb.engine.dispose()


def test_a_short_grace_beside_a_long_one_fails_nothing_live_and_a_lost_machine_is_still_reaped(
    storage: str, tmp_path: Path
) -> None:
    """Machine A beats every 3 s (--grace 18); machine B judges with --grace 2. B fails none of A's live trials
    (each trial is judged by its own machine's grace, stored with it); A killed whole, B fails its trial once it is
    silent past A's 18 s."""
    # Trials long enough to outlast the test on a fast machine (40 epochs ended within its 12 s wait on a Xeon with
    # AMX): each is ended by the kill and the SIGTERM below, never by finishing.
    flags = ["--epochs", "2000", "--max-chars", "10000", "--storage", storage, "--study", "lab", "--pruner", "none"]
    flags += ["--search", "lr=1e-3:1e-2:log"]
    machine_a = subprocess.Popen(
        sweep_command(*flags, "--grace", "18", "--trials", "3"), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    machine_b = None
    reads = StudyReads(storage, "lab")
    try:
        deadline = time.monotonic() + 90
        trial_a = None
        while trial_a is None and time.monotonic() < deadline and machine_a.poll() is None:
            trial_a = reads.running_of(machine_a.pid)
            time.sleep(0.3)
        assert trial_a is not None, ("machine A's trial should be running", reads.last_errors())
        assert trial_a.user_attrs.get("grace") == 18
        machine_b = subprocess.Popen(
            sweep_command(*flags, "--grace", "2", "--trials", "40"), cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        # Long enough for B to start and reap several times, and for A's beats (3 s apart) to age past B's 2 s.
        time.sleep(12)
        failed = [t for t in reads.trials() if t.state.name == "FAIL"]
        assert not failed, [(t.number, t.user_attrs.get("reason")) for t in failed]
        trial_a = reads.running_of(machine_a.pid)
        assert trial_a is not None, ("machine A should still be training (2,000 epochs)", reads.last_errors())
        os.killpg(machine_a.pid, signal.SIGKILL)  # machine A lost: nothing of it records anything
        machine_a.communicate(timeout=30)
        killed_at = time.monotonic()
        lost = None
        while lost is None and time.monotonic() - killed_at < 120:
            # None when the read failed (a read that fails reads as no trials): look again.
            found = next((t for t in reads.trials() if t.number == trial_a.number), None)
            lost = found if found is not None and found.state.name == "FAIL" else None
            time.sleep(0.5)
        assert lost is not None, ("B should fail A's silent trial", reads.last_errors())
        # Not before A's own grace (18 s) after its last beat (at most 3 s before the kill).
        assert time.monotonic() - killed_at > 18 - 3
        assert f"(pid {trial_a.user_attrs['pid']}) for over 18 s; queued again" in lost.user_attrs["reason"]
        os.killpg(machine_b.pid, signal.SIGTERM)
        out_b, _ = machine_b.communicate(timeout=120)
        reasons = [t.user_attrs.get("reason", "") for t in reads.trials() if t.state.name == "FAIL"]
    finally:
        reads.close()
        for process in (machine_a, machine_b):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert "Traceback" not in out_b
    assert "database unreachable" not in out_b  # the test's reads leave the server connections to spare
    assert f"trial {trial_a.number:>3}  failed: lost: no heartbeat from" in out_b
    assert "was failed by another process" not in out_b
    assert [r for r in reasons if r.startswith("lost:")] == [lost.user_attrs["reason"]], reasons


RACE = """
import sys, time
from engine.errors import RnnTuiError
from engine.sweep import SweepSpec, build_space, open_storage
from engine.sweep.study import open_study
url, study, epochs, at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fixed = {"hidden": 16, "max_chars": 4000, "epochs": epochs}
spec = SweepSpec(fixed=fixed, space=build_space(fixed, None, ["lr=1e-3:1e-2:log"]), study=study, storage=url,
                 trials=1, timeout=None, jobs=1, threads=1)
storage = open_storage(url)
time.sleep(max(0.0, at - time.time()))
try:
    open_study(spec, storage, check=True)
except RnnTuiError as exc:
    print(exc)
    sys.exit(2)
print("accepted")
"""


def test_pairs_creating_one_study_together_never_leave_two_identities(storage: str, tmp_path: Path) -> None:
    """Six pairs of processes, each pair creating one new study at the same instant with 3 and 4 epochs: in every
    study one identity is stored, every process that was accepted has it, the other is refused with exit 2."""
    url = resolve_storage(storage)[0]
    subprocess.run([sys.executable, "-c", RACE, url, "warm-up", "3", "0"], cwd=tmp_path, check=True, timeout=120)
    at = time.time() + 20  # every process has imported and opened the storage by then, on a loaded machine too
    pairs = 6
    processes = [
        (study, epochs, subprocess.Popen([sys.executable, "-c", RACE, url, study, str(epochs), str(at)], cwd=tmp_path,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for study in (f"race-{n}" for n in range(pairs)) for epochs in (3, 4)
    ]  # fmt: skip
    results = [(study, epochs, p.wait(timeout=180), *p.communicate()) for study, epochs, p in processes]
    import optuna

    rdb = optuna.storages.RDBStorage(url)
    identities = {n: optuna.load_study(study_name=f"race-{n}", storage=rdb).user_attrs["identity"]
                  for n in range(pairs)}  # fmt: skip
    rdb.engine.dispose()
    for n in range(pairs):
        study = f"race-{n}"
        stored = identities[n]["epochs"]
        outcomes = {epochs: (code, out, err) for name, epochs, code, out, err in results if name == study}
        assert outcomes[stored][0] == 0 and "accepted" in outcomes[stored][1], outcomes
        other = 7 - stored
        code, out, err = outcomes[other]
        assert code == 2, (study, outcomes)
        # Refused naming the epochs; which words depends on which side of the race stored the identity first.
        refused = (f"trains {stored} epochs a trial, this command {other}", f"epochs {stored}→{other}")
        assert any(words in out for words in refused), (study, out, err)


# ----- identity by meaning -----


def _identity(searches: list[str] | None = None, **settings: Any) -> dict[str, Any]:
    from engine.sweep import build_space
    from engine.sweep.study import study_identity

    fixed = {"hidden": 16, "max_chars": 4000, "epochs": 2, **settings}
    return study_identity(fixed, build_space(fixed, None, searches or ["lr=1e-3:1e-2:log", "cell=rnn,gru"]))


def test_identity_compares_meaning_search_order_no_effect_settings_and_the_decoded_text(tmp_path: Path) -> None:
    import zipfile

    from engine.sweep.study import identity_difference

    base = _identity()
    # The same searches in another order.
    assert identity_difference("lab", base, _identity(["cell=rnn,gru", "lr=1e-3:1e-2:log"])) is None
    # --val-fraction has no effect when the corpus is longer than --max-chars (the val-chars after it are held out).
    assert identity_difference("lab", base, _identity(val_fraction=0.3)) is None
    # dropout has no effect with one layer.
    one = ["lr=1e-3:1e-2:log"]
    assert identity_difference("lab", _identity(one, layers=1), _identity(one, layers=1, dropout=0.3)) is None
    # The same text as .txt and as .zip.
    with zipfile.ZipFile(Path(os.environ["RNN_TUI_CORPUS"])) as archive:
        member = next(n for n in archive.namelist() if n.endswith(".txt"))
        (tmp_path / "lyrics.txt").write_bytes(archive.read(member))
    txt = _identity(corpus=str(tmp_path / "lyrics.txt"))
    assert txt["corpus"] == "lyrics.txt" and txt["corpus_sha256"] != base["corpus_sha256"]
    assert identity_difference("lab", base, txt) is None
    # What has an effect is still refused: another --val-chars, another text, another space.
    line = identity_difference("lab", base, _identity(val_chars=1000))
    assert line is not None and "holds out with val-chars 1500, this command 1000" in line
    (tmp_path / "other.txt").write_text("另一首歌的歌词" * 2000, encoding="utf-8")
    line = identity_difference("lab", base, _identity(corpus=str(tmp_path / "other.txt")))
    assert line is not None and "trains on jaychou_lyrics.txt.zip (sha256 " in line and "other.txt" in line
    line = identity_difference("lab", base, _identity(["cell=rnn,gru,lstm", "lr=1e-3:1e-2:log"]))
    assert line is not None and "searches lr=0.001:0.01:log cell=rnn,gru, this command" in line


def test_a_study_stored_by_the_earlier_version_still_compares() -> None:
    """An identity from before identities by meaning (the file's sha256, every held-out setting, dropout with one
    layer): the same command is accepted, another corpus or another --val-chars refused."""
    from engine.sweep.study import identity_difference

    new = _identity(["lr=1e-3:1e-2:log"], layers=1)
    old = {k: v for k, v in new.items() if k != "text_sha256"}
    old["held_out"] = {"max_chars": 4000, "val_chars": 1500, "val_fraction": 0.1}
    old["settings"] = {**new["settings"], "dropout": 0.0}
    assert identity_difference("lab", old, new) is None
    line = identity_difference("lab", old, _identity(["lr=1e-3:1e-2:log"], layers=1, val_chars=1000))
    assert line is not None and "val-chars 1500, this command 1000" in line
    moved = {**old, "corpus_sha256": "0" * 64}
    line = identity_difference("lab", moved, new)
    assert line is not None and "trains on jaychou_lyrics.txt.zip (sha256 000000000000…)" in line


# ----- passwords, names, signals -----

SECRET = "hunter2-Pa55"


def _processes() -> str:
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout


def test_the_password_shows_nowhere_console_errors_or_ps(postgres_server: PostgresServer, tmp_path: Path) -> None:
    """The test server trusts every connection, so any password is accepted: the one in the URL is never shown, in
    the console, in an error, or in any process's arguments (the storage comes through RNN_TUI_SWEEP_STORAGE)."""
    url = postgres_server.url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    flags = ["--epochs", "2", "--trials", "1", "--study", "secret", "--search", "lr=1e-3:1e-2:log"]
    environment = {**os.environ, "RNN_TUI_SWEEP_STORAGE": url}
    process = subprocess.Popen(sweep_command(*flags), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=environment)  # fmt: skip
    seen = []
    try:
        while process.poll() is None:
            seen.append(_processes())
            time.sleep(0.5)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out + err
    assert "postgres:***@127.0.0.1" in out  # the storage is named, its password hidden
    assert len(seen) >= 2 and not any(SECRET in listing for listing in seen)
    assert SECRET not in out + err
    # Malformed URLs: one line, exit 2, no password (nor the tail an unencoded '@' would split off).
    for bad in (f"postgresql://postgres:{SECRET}@127.0.0.1:notaport/sweeps",
                "postgresql://postgres:hunter@2-Pa55@127.0.0.1/sweeps"):  # fmt: skip
        result = subprocess.run(sweep_command(*flags, "--storage", bad), cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)  # fmt: skip
        assert result.returncode == 2, result.stdout + result.stderr
        assert "hunter" not in result.stdout + result.stderr and "2-Pa55" not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr and "***" in result.stderr
    assert "%40" in result.stderr  # the '@' in the password is named, with the fix


def test_a_study_name_too_long_is_exit_2_naming_the_limit(tmp_path: Path) -> None:
    result = subprocess.run(sweep_command("--study", "x" * 600, "--storage", f"sqlite:///{tmp_path / 's.db'}"),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert "--study is 600 characters long; a study name holds at most 512" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_sighup_is_recorded_as_sighup(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    flags = ["--epochs", "30", "--max-chars", "10000", "--trials", "2", "--storage", storage, "--pruner", "none"]
    process = subprocess.Popen(sweep_command(*flags, "--search", "lr=1e-3:1e-2:log"), cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    reads = StudyReads(storage, "rnn-tui")
    try:
        deadline = time.monotonic() + 90
        while reads.running_of(process.pid) is None and time.monotonic() < deadline:
            time.sleep(0.3)
        os.kill(process.pid, signal.SIGHUP)  # the command alone: its terminal closed
        out, err = process.communicate(timeout=120)
        stopped = [t for t in reads.trials() if t.state.name == "FAIL"]
    finally:
        reads.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 129, out + err
    assert [t.user_attrs["reason"] for t in stopped] == ["stopped by SIGHUP; queued again"], out


def test_outage_lines_once_per_outage_and_in_order() -> None:
    """The monitor says an outage first; its workers' lines about it come late (drained after it is over): two
    outages 15 s apart read outage, back, outage, back; a long one is said again every 30 s."""
    from engine.sweep.monitor import OutageLines

    lines: list[str] = []
    outages = OutageLines(lines.append)
    outages.tell("outage", "down 1 (monitor)", 100.0)
    outages.tell("back", "back 1 (monitor)", 105.0)
    outages.tell("outage", "down 1 (worker, late)", 100.5)
    outages.tell("back", "back 1 (worker, late)", 105.5)
    outages.tell("outage", "down 2 (worker)", 120.0)
    outages.tell("outage", "down 2 (monitor)", 120.2)
    outages.tell("outage", "down 2 still (monitor)", 150.3)
    outages.tell("back", "back 2 (monitor)", 160.0)
    outages.tell("back", "back 2 (worker)", 160.1)
    assert lines == ["down 1 (monitor)", "back 1 (monitor)", "down 2 (worker)", "down 2 still (monitor)",
                     "back 2 (monitor)"]  # fmt: skip


async def test_the_app_shows_no_password_on_screen_or_in_its_sweeps_arguments(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F12 started with a password in the storage URL: the field, the started line, every message and the rendered
    screen show ***; the sweep it starts, and its workers, have no password in their arguments (ps)."""
    from pilot_helpers import wait_for
    from test_sweep_screen import screen_text
    from textual.widgets import Input

    from tui.app import RnnTuiApp
    from tui.app.screens.sweep import SweepScreen
    from tui.cli import app_options, parse

    monkeypatch.chdir(tmp_path)
    url = postgres_server.url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    argv = ["--hidden", "16", "--max-chars", "4000", "--threads", "1", "--seed", "0", "--paused"]
    app = RnnTuiApp(app_options(parse(argv)))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f12")
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        for name, value in (("storage", url), ("study", "app-secret"), ("space", "lr=1e-3:1e-2:log"),
                            ("trials", "1"), ("epochs", "2")):  # fmt: skip
            screen.query_one(f"#sweep-{name}", Input).value = value
        screen.start()
        await pilot.pause()
        state = app.sweep_state
        assert state is not None and state.running, screen.message
        shown = [state.command, screen.message, screen.query_one("#sweep-storage", Input).value, screen_text(app)]
        listings = []
        while state.running:
            listings.append(_processes())
            shown.append(screen_text(app))
            await pilot.pause(0.5)
        await wait_for(pilot, lambda: screen.ended is not None, "the sweep's end", timeout=120)
        assert screen.ended is not None and screen.ended.returncode == 0, screen.ended
        await wait_for(pilot, lambda: len(screen.rows) == 1, "its trial read back")
        shown += [screen.message, screen_text(app)]
    assert "postgres:***@127.0.0.1" in state.command
    assert any("tui.main sweep" in listing for listing in listings), "the sweep process should be listed"
    assert not any(SECRET in text for text in shown + listings)


def _age_heartbeat(storage: Any, trial: int, seconds: float) -> None:
    """Set a trial's last heartbeat seconds back (as after an outage, or a machine gone)."""
    from datetime import timedelta

    import sqlalchemy

    with storage.engine.begin() as connection:
        now = connection.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar()
        if isinstance(now, str):
            from datetime import datetime

            now = datetime.fromisoformat(now)
        connection.execute(
            sqlalchemy.text("update trial_heartbeats set heartbeat = :at where trial_id = :trial"),
            {"at": now - timedelta(seconds=seconds), "trial": trial},
        )


def test_a_reaper_right_after_an_outage_fails_only_what_stays_silent(tmp_path: Path) -> None:
    """Two running trials whose heartbeats are 20 s old, their machine's grace 6 s (as a reaper finds them right
    after an outage): neither is failed at first sight. One beats again (its machine was fine) and is never
    failed; the other stays silent past the confirmation time (3 s) and is failed, by its own grace."""
    import optuna

    from engine.sweep import open_storage
    from engine.sweep.liveness import Reaper, confirm_seconds
    from engine.sweep.optuna_internals import record_heartbeat, trial_id

    storage = open_storage(f"sqlite:///{tmp_path / 'sweeps.db'}")
    study = optuna.create_study(study_name="lab", storage=storage)
    alive, gone = study.ask(), study.ask()
    for trial in (alive, gone):
        trial.suggest_float("lr", 1e-3, 1e-2, log=True)
        trial.set_user_attr("grace", 6.0)
        trial.set_user_attr("host", "lab-a")
        trial.set_user_attr("pid", 1000 + trial.number)
        record_heartbeat(storage, trial_id(trial))
        _age_heartbeat(storage, trial_id(trial), 20)
    reaper = Reaper(study, grace=2)  # this reader's own --grace: never applied to another machine's trials
    assert reaper.reap() == []
    assert set(reaper.suspects) == {trial_id(alive), trial_id(gone)}
    assert confirm_seconds(6) == 3 and 0 < reaper.waiting() <= 3
    record_heartbeat(storage, trial_id(alive))  # its machine is back
    time.sleep(3.2)
    lost = reaper.reap()
    assert lost == [
        (gone.number, f"lost: no heartbeat from lab-a (pid {1000 + gone.number}) for over 6 s; queued again")
    ]
    states = {t.number: t.state.name for t in study.get_trials()}
    assert states[alive.number] == "RUNNING" and states[gone.number] == "FAIL"
    # A heartbeat 4 s old is within the trial's 6 s, whatever this reader's 2 s.
    _age_heartbeat(storage, trial_id(alive), 4)
    assert Reaper(study, grace=2).reap() == []
    assert study.get_trials()[alive.number].state.name == "RUNNING"


def test_a_fresh_database_whose_tables_another_command_creates_meanwhile_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands started together on a fresh PostgreSQL database race to create Optuna's tables; the loser met
    'type "studydirection" already exists' (seen once in 24 opens, 3 at a time) and exited 2. It now opens the
    tables the winner made."""
    import optuna
    import sqlalchemy.exc

    from engine.sweep import open_storage

    real = optuna.storages.RDBStorage
    calls: list[str] = []

    def racing(url: str, **kwargs: Any) -> Any:
        calls.append(url)
        if len(calls) == 1:
            raise sqlalchemy.exc.ProgrammingError(
                "CREATE TYPE studydirection", {}, Exception('type "studydirection" already exists')
            )
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    storage = open_storage(f"sqlite:///{tmp_path / 'sweeps.db'}")
    assert isinstance(storage, real) and len(calls) == 2


OPEN = """
import sys, time
from engine.errors import RnnTuiError
from engine.sweep import open_storage
url, at = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, at - time.time()))
try:
    open_storage(url)
except RnnTuiError as exc:
    print(exc)
    sys.exit(2)
"""


def test_commands_opening_a_fresh_sqlite_file_together_all_open_it(tmp_path: Path) -> None:
    """Three commands at the same instant on each of four fresh SQLite files: the losers of the race to create
    Optuna's tables met 'table studies already exists' (an OperationalError; 7 opens in 24 refused) and exited 2,
    which also failed the two-machine grace test when its first read created the tables as machine A opened them.
    Every one opens the tables the winner made."""
    at = time.time() + 15  # every process has imported by then, on a loaded machine too
    processes = [
        subprocess.Popen([sys.executable, "-c", OPEN, f"sqlite:///{tmp_path / f'fresh-{n}.db'}", str(at)],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for n in range(4) for _ in range(3)
    ]  # fmt: skip
    results = [(p.wait(timeout=180), p.communicate()[0]) for p in processes]
    assert all(code == 0 for code, _ in results), results
