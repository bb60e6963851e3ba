"""The catalogue of bad inputs and faults, in the app: an inline message or a dialog, and the app keeps running.

Driven by Textual's pilot on the real corpus, with small models and short runs. Each test checks what the
person sees (the status panel, the form's error line, the generate box, the samples log) and that nothing
they had is lost (the run training goes on, the weights stay good).
"""

from __future__ import annotations

import http.server
import os
import pickle
import random
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import torch
from conftest import BOOK_CORPUS
from pilot_helpers import wait_for
from textual import events
from textual.pilot import Pilot
from textual.widgets import Button, Input

from engine import checkpoint as checkpoints
from engine.config import TrainConfig
from engine.data.corpus import FALLBACK_PATH, load_corpus
from engine.data.download import CORPUS_FILENAME
from engine.trainer import Trainer
from tui.app import RnnTuiApp
from tui.app.messages import Loading
from tui.app.screens import ConfirmScreen, LoadScreen
from tui.app.widgets.generate import GenerateBox
from tui.app.widgets.settings import SettingsForm
from tui.cli import app_options, parse

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SIZE = (100, 30)
FAST = ["--hidden", "64", "--threads", "1", "--seed", "0"]


def make_app(*flags: str) -> RnnTuiApp:
    return RnnTuiApp(app_options(parse([*FAST, *flags])))


async def press(pilot: Pilot[int], *keys: str) -> None:
    """pilot.press without its waits for an idle CPU: those last a second per key while training runs."""
    for key in keys:
        # Queued on the app as the driver would. pause() first waits until the app has handled what is queued;
        # twice: a key's action may itself be queued.
        pilot.app.post_message(events.Key(key, key if len(key) == 1 else None))
        await pilot.pause(0.01)
        await pilot.pause(0.01)


async def dialog(pilot: Pilot[int], key: str, path: Path) -> None:
    """Open the save (ctrl+s) or load (ctrl+o) dialog and type path in it."""
    app = pilot.app
    await press(pilot, key)
    await wait_for(pilot, lambda: bool(app.screen.query("#path")), f"the {key} dialog")
    app.screen.query_one("#path", Input).value = str(path)


def state(app: RnnTuiApp) -> str:
    return app.run_control.status.state


def shown(app: RnnTuiApp) -> str:
    return app.main.status.render_status().plain


def trainer_threads() -> list[threading.Thread]:
    """Threads inside Trainer.run (a generating thread in Trainer.copy_model does not count)."""
    found = []
    trainer_file = os.path.join("engine", "trainer.py")
    frames = sys._current_frames()
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        while frame is not None:
            if frame.f_code.co_name == "run" and frame.f_code.co_filename.endswith(trainer_file):
                found.append(thread)
                break
            frame = frame.f_back
    return found


def assert_one_line(message: str | None, *needles: str) -> None:
    assert message is not None
    assert "\n" not in message and "Traceback" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)


async def restart(pilot: Pilot[int], app: RnnTuiApp) -> None:
    """F7, confirming if the app asks."""
    await press(pilot, "f7")
    await pilot.pause(0.02)
    if isinstance(app.screen, ConfirmScreen):
        await press(pilot, "enter")


async def generate(
    pilot: Pilot[int], app: RnnTuiApp, prefix: str, length: str = "20", temp: str = "", top_k: str = ""
) -> GenerateBox:
    box = app.main.generate_box
    app.query_one("#prefix", Input).value = prefix
    app.query_one("#gen-length", Input).value = length
    app.query_one("#gen-temperature", Input).value = temp
    app.query_one("#gen-top-k", Input).value = top_k
    app.query_one("#prefix", Input).focus()
    box.last_text = box.last_error = None  # the previous answer is not this one's
    await press(pilot, "enter")
    await wait_for(pilot, lambda: box.last_text is not None or box.last_error is not None, f"generating {prefix[:9]!r}")
    return box


# ----- corpus -----


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda d: d / "nope.zip", "corpus not found"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "empty.txt", b""), "is empty"),
        (lambda d: _write(d / "cut.zip", BOOK_BYTES()[: len(BOOK_BYTES()) // 2]), "not a valid zip"),
        (lambda d: _write(d / "latin1.txt", "café".encode("latin-1") * 500), "not UTF-8"),
        (lambda d: _zip(d / "other.zip", {"notes.csv": "一"}), "no jaychou_lyrics.txt"),
        (lambda d: _write(d / "short.txt", "短短的一句歌词".encode()), "needs at least 1,152"),
        (lambda d: _sparse(d / "huge.txt", 65 * 2**20), "limit is 64 MiB"),
    ],
    ids=["missing", "directory", "empty", "truncated-zip", "not-utf8", "zip-without-txt", "too-short", "huge"],
)
async def test_bad_corpus_on_the_command_line(
    tmp_path: Path, corpus_path: Path, make: Callable[[Path], Path], needle: str
) -> None:
    app = make_app("--epochs", "2", "--max-chars", "0", "--corpus", str(make(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "failed", "the corpus error")
        assert_one_line(app.run_control.failure, needle)
        assert needle in shown(app)  # in the status panel
        assert app.is_running and not trainer_threads()
        # The form shows the bad path; a good one typed there restarts without asking (nothing was trained).
        assert app.main.settings.text_of("corpus") != ""
        app.main.settings.set_text("corpus", str(corpus_path))
        app.main.settings.set_text("max_chars", "10000")
        await press(pilot, "f7")
        assert not isinstance(app.screen, ConfirmScreen)
        await wait_for(pilot, lambda: state(app) == "finished", "training on the good corpus")
        assert app.run_control.status.vocab_size == 1027 and app.run_control.failure is None


async def test_bad_corpus_typed_in_the_form(tmp_path: Path) -> None:
    app = make_app("--epochs", "500")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 1, "first epoch")
        running = app.run_control.current
        # A path that does not exist is named in the form; the run training is not stopped.
        app.main.settings.set_text("corpus", str(tmp_path / "typo.zip"))
        pending = app.main.settings.widget("corpus")
        await wait_for(pilot, lambda: pending.has_class("-pending"), "the form to mark the change")  # as when typed
        await press(pilot, "f7")
        assert not isinstance(app.screen, ConfirmScreen)
        assert_one_line(app.main.settings.errors.get("corpus"), "corpus not found", "typo.zip")
        assert app.run_control.current is running and state(app) == "running"
        seen = len(app.run_control.epochs_seen)
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) > seen, "training going on")

        # A file that exists but is no corpus: the restart (confirmed) fails in the status panel.
        app.main.settings.set_text("corpus", str(_write(tmp_path / "empty.txt", b"")))
        await restart(pilot, app)
        await wait_for(pilot, lambda: state(app) == "failed", "the empty corpus")
        assert_one_line(app.run_control.failure, "is empty")
        assert "is empty" in shown(app)
        assert any("is empty" in line for line in app.main.samples.lines_written)
        assert len(app.run_control.run_book.runs) == 1  # the run it replaced is kept (F10)

        app.main.settings.set_text("corpus", "")  # blank: found as usual
        await restart(pilot, app)
        await wait_for(
            pilot, lambda: len(app.run_control.epochs_seen) >= 1 and state(app) == "running", "training again"
        )
        assert app.run_control.status.vocab_size == 1027


# ----- settings -----


async def test_bad_settings_are_named_inline() -> None:
    app = make_app("--epochs", "500")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 1, "first epoch")
        running = app.run_control.current
        form = app.main.settings
        live = [
            ("lr", "0", "lr must be > 0"),
            ("lr", "nan", "lr must be a finite number"),
            ("lr", "inf", "lr must be a finite number"),
            ("lr", "fast", "lr must be a number"),
            ("clip", "-1", "clip must be ≥ 0"),
            ("temperature", "0", "temp must be > 0"),
            ("temperature", "-2", "temp must be > 0"),
            ("pred_period", "0", "period must be a whole number ≥ 1"),
            ("pred_len", "-1", "pred len must be a whole number ≥ 0"),
            ("pred_len", "99999999", "pred len must be at most"),
            ("prefixes", "", None),  # no prefix at all is allowed: no samples
        ]
        for name, text, needle in live:
            widget = form.widget(name)
            widget.focus()
            widget.value = text
            await press(pilot, "enter")
            if needle is None:
                assert name not in form.errors
            else:
                await wait_for(pilot, partial(has_error, form, name), f"the {name} error")
                assert_one_line(form.errors.get(name), needle)
                assert widget.has_class("-invalid")
                assert needle in str(form.query_one("#settings-error").render())
            widget.value = {"lr": "0.001", "clip": "0.01", "temperature": "", "pred_period": "50"}.get(name, "50")
            if name == "prefixes":
                widget.value = "分开, 不分开"
            await press(pilot, "enter")
            await wait_for(pilot, partial(has_no_error, form, name), f"{name} accepted")

        structural = [
            ("hidden", "0", "hidden must be a whole number ≥ 1"),
            ("layers", "-1", "layers must be a whole number ≥ 1"),
            ("epochs", "ten", "epochs must be a whole number"),
            ("batch_size", "0", "batch must be a whole number ≥ 1"),
            ("num_steps", "-5", "steps must be a whole number ≥ 1"),
            ("dropout", "1.5", "dropout must be in [0, 1)"),
            ("max_chars", "-1", "maxchars must be a whole number ≥ 0"),
        ]
        for name, text, needle in structural:
            form.set_text(name, text)
            await wait_for(pilot, partial(has_error, form, name), f"the {name} error")
            assert_one_line(form.errors.get(name), needle)  # as it is typed, not only at F7
            await press(pilot, "f7")  # refused: no dialog, no restart
            assert not isinstance(app.screen, ConfirmScreen), (name, form.errors, app.screen.question)
            assert app.run_control.current is running
            form.set_text(name, str(getattr(TrainConfig(hidden=64), name)))
            await wait_for(pilot, partial(has_no_error, form, name), f"{name} accepted")

        if not torch.cuda.is_available():
            form.widget("device").value = "cuda"
            await wait_for(pilot, lambda: form.widget("device").has_class("-pending"), "the form to mark the change")
            await press(pilot, "f7")
            assert_one_line(form.errors.get("device"), "device cuda is not available")
            assert app.run_control.current is running and state(app) == "running"
            form.widget("device").value = "auto"
            await pilot.pause(0.02)
        assert all(e.lr == pytest.approx(1e-3) for e in app.run_control.epochs_seen)  # no bad value reached the trainer
        assert app.run_control.current is running and state(app) == "running"


# ----- the generate box -----


async def test_generate_box_bad_values_and_extreme_prefixes(corpus_path: Path) -> None:
    app = make_app("--epochs", "500")
    text = load_corpus(corpus_path, 10_000).text
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 1, "first epoch")
        cases = [
            ({"length": ""}, "length must be a whole number"),
            ({"length": "ten"}, "length must be a whole number, got 'ten'"),
            ({"length": "-3"}, "length must be a whole number ≥ 0"),
            ({"temp": "0"}, "temperature must be a number > 0"),
            ({"temp": "hot"}, "temperature must be a number > 0"),
            ({"top_k": "0"}, "top-k must be a whole number ≥ 1"),
            ({"top_k": "-2"}, "top-k must be a whole number ≥ 1"),
            ({"top_k": "x"}, "top-k must be a whole number ≥ 1"),
            ({"prefix": ""}, "prefix is empty"),
            ({"prefix": "分开☃Ω"}, "not in the vocabulary: '☃', 'Ω'"),
        ]
        for change, needle in cases:
            box = await generate(pilot, app, **{"prefix": "分开", **change})
            assert_one_line(box.last_error, needle)
            assert box.output.has_class("-error")

        box = await generate(pilot, app, "分开", length="10", temp="0.8", top_k="5")  # sampled, top-k: works
        assert box.last_error is None and box.last_text is not None and len(box.last_text) == 12

        long_prefix = text[:10_000]  # read in one forward pass, then generation goes on
        box = await generate(pilot, app, long_prefix, length="30")
        assert box.last_error is None and box.last_text is not None
        assert box.last_text.startswith(long_prefix) and len(box.last_text) == 10_030

        box = await generate(pilot, app, "分开", length="100000000")
        assert box.last_error is None and box.last_text is not None and len(box.last_text) == 2 + 10_000
        assert "length 100,000,000 capped at 10,000 characters" in str(box.output.render())
        assert state(app) == "running"


# ----- checkpoints -----


class _RunsCode:
    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:  # unpickling it would create a file: never
        return (os.system, (f"touch {PWNED}",))


PWNED = Path(os.environ.get("TMPDIR", "/tmp")) / f"rnn-tui-pwned-{os.getpid()}"


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory: pytest.TempPathFactory, corpus_path: Path) -> dict[str, Path]:
    """Every kind of checkpoint the app must refuse, beside a good one to damage."""
    directory = tmp_path_factory.mktemp("ckpts")
    torch.set_num_threads(1)
    good = directory / "good.ckpt"
    Trainer(TrainConfig(corpus=str(corpus_path), hidden=16, epochs=1, seed=1), load_corpus(corpus_path, 10_000)).save(
        str(good)
    )
    other = TrainConfig(corpus=str(FALLBACK_PATH), hidden=16, epochs=1, seed=1)  # another corpus, another vocabulary
    Trainer(other, load_corpus(FALLBACK_PATH, 10_000)).save(str(directory / "other-corpus.ckpt"))
    payload = torch.load(good, weights_only=True)
    payload["config"]["hidden"] = 32  # weights of 16 hidden units under settings that say 32
    torch.save(payload, directory / "inconsistent.ckpt")
    _write(directory / "truncated.ckpt", good.read_bytes()[:5000])
    _write(directory / "random.ckpt", random.Random(0).randbytes(4096))
    _write(directory / "code.ckpt", pickle.dumps({"model": _RunsCode()}))
    return {
        "missing": directory / "missing.ckpt",
        "truncated": directory / "truncated.ckpt",
        "random": directory / "random.ckpt",
        "code": directory / "code.ckpt",
        "other-corpus": directory / "other-corpus.ckpt",
        "inconsistent": directory / "inconsistent.ckpt",
    }


NEEDLES: dict[str, str | tuple[str, ...]] = {
    "missing": "checkpoint not found",
    "truncated": "not a readable rnn-tui checkpoint",
    # Random bytes that start like a pickle are refused as one (torch cannot tell them from a hostile pickle).
    "random": ("not a readable rnn-tui checkpoint", "refused to load"),
    "code": "refused to load",
    "other-corpus": "vocabulary",
    "inconsistent": "do not fit its own settings",
}


async def test_bad_checkpoints_leave_the_run_untouched(bad_checkpoints: dict[str, Path], corpus_path: Path) -> None:
    app = make_app("--epochs", "500", "--corpus", str(corpus_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 1, "first epoch")
        running = app.run_control.current
        for kind, path in bad_checkpoints.items():
            # Another corpus's checkpoint cannot continue here, but generates from its own vocabulary: not a fault.
            for button in ("#continue",) if kind == "other-corpus" else ("#continue", "#just-generate"):
                errors = _mentions(app, path)
                await dialog(pilot, "ctrl+o", path)
                assert isinstance(app.screen, LoadScreen)
                app.screen.query_one(button, Button).press()
                await wait_for(pilot, partial(mentioned_since, app, path, errors), f"the {kind} checkpoint's error", 20)
                message = [line for line in app.main.samples.lines_written if path.name in line][-1]
                wanted = NEEDLES[kind]
                needles = wanted if isinstance(wanted, tuple) else (wanted,)
                assert any(needle in message for needle in needles), message
                assert_one_line(message, "the current run goes on")
                assert app.run_control.current is running and state(app) == "running", (kind, button)
                assert app.run_control.checkpoint is None
        assert not PWNED.exists()
        seen = len(app.run_control.epochs_seen)
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) > seen, "training going on")
        assert len(trainer_threads()) == 1


# ----- gaps found in review: continuing a checkpoint -----


async def test_continue_takes_the_epochs_from_the_form(tmp_path: Path) -> None:
    path = tmp_path / "run.ckpt"
    app = make_app("--epochs", "2")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "2 epochs")
        first_two = [e.perplexity for e in app.run_control.epochs_seen]
        await dialog(pilot, "ctrl+s", path)
        await press(pilot, "enter")
        await wait_for(pilot, path.exists, "the checkpoint")

        app.main.settings.set_text("epochs", "4")  # a finished checkpoint trains on to the form's epochs
        await dialog(pilot, "ctrl+o", path)
        await press(pilot, "enter")
        await wait_for(pilot, lambda: state(app) == "finished" and app.run_control.status.epoch == 4, "epochs 3 and 4")
        assert [e.epoch for e in app.run_control.epochs_seen] == [3, 4]
        assert [epoch for epoch, _ in app.main.plot.points] == [1, 2, 3, 4]  # the checkpoint's history, then the new
        assert [p for _, p in app.main.plot.points][:2] == first_two
        told = [
            line
            for line in app.main.samples.lines_written
            if "from epoch 2 to 4 (epochs from the settings form)" in line
        ]
        assert len(told) == 1, told

        await dialog(pilot, "ctrl+s", path)
        await press(pilot, "enter")
        await wait_for(pilot, lambda: checkpoints.load(path).epoch == 4, "the 4-epoch checkpoint")

        # The form's epochs not above the checkpoint's: it is shown, finished, and the app says what to do.
        app.main.settings.set_text("epochs", "3")
        previous = app.run_control.current
        await dialog(pilot, "ctrl+o", path)
        await press(pilot, "enter")
        await wait_for(
            pilot,
            lambda: (run := app.run_control.current) is not previous and run is not None and run.ended,
            "the resumed run",
        )
        await wait_for(pilot, lambda: len(app.main.plot.points) == 4, "the checkpoint's history drawn")
        assert state(app) == "finished" and app.run_control.status.epoch == 4 and not app.run_control.epochs_seen
        # The chart (and its title) is rebuilt at most every REDRAW_SECONDS: a redraw called at once could be one
        # the throttle skips, leaving the title of the run before (the failure seen once). The refresh draws it.
        await wait_for(pilot, lambda: "epoch 4" in str(app.main.plot.border_title), "the plot's title")
        assert "waiting" not in str(app.main.plot.border_title)
        # The note is wrapped to the panel's width (a line or three): read as one line of words.
        assert "has trained all its 4 epochs: set epochs above 4" in " ".join(shown(app).split())
        assert app.run_control.status.perplexity == pytest.approx(app.main.plot.points[-1][1])


# ----- faults -----


async def test_divergence_keeps_the_last_good_weights(tmp_path: Path) -> None:
    app = make_app("--epochs", "5", "--optimizer", "sgd", "--lr", "10", "--clip", "0")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "failed", "divergence")
        assert_one_line(app.run_control.failure, "training diverged", "lower the learning rate")
        assert "diverged" in shown(app)
        trainer = app.run_control.trainer
        assert trainer is not None and all(torch.isfinite(p).all() for p in trainer.model.parameters())
        box = await generate(pilot, app, "分开", length="10")  # the weights from before that batch still generate
        assert box.last_error is None and box.last_text is not None and box.last_text.startswith("分开")
        path = tmp_path / "kept.ckpt"
        await dialog(pilot, "ctrl+s", path)
        await press(pilot, "enter")
        await wait_for(pilot, path.exists, "the checkpoint of the last good weights")
        kept = checkpoints.load(path)
        assert all(torch.isfinite(t).all() for t in kept.model_state.values())
        assert app.is_running


async def test_rapid_pause_resume_restart_cycles_leave_one_trainer_thread() -> None:
    app = make_app("--epochs", "500")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) >= 1, "first epoch")
        for _ in range(50):
            await press(pilot, "f5")
            await press(pilot, "f5")
            await restart(pilot, app)
        last = app.run_control.current
        await wait_for(
            pilot, lambda: len(app.run_control.epochs_seen) >= 1 and state(app) == "running", "the last run training"
        )
        await wait_for(pilot, lambda: len(trainer_threads()) == 1, "the cancelled runs' threads to end", timeout=10)
        await pilot.pause(0.5)
        assert len(trainer_threads()) == 1
        assert app.run_control.current is last and last is not None and last.trainer is not None
        assert sum(not w.is_finished for w in app.workers if w.group == "training") == 1
        seen = len(app.run_control.epochs_seen)
        await wait_for(pilot, lambda: len(app.run_control.epochs_seen) > seen, "the one left training")


async def _perplexities(generating: bool) -> tuple[list[float], int]:
    """A short run with dropout (it draws from torch's random generator); sampled generations meanwhile if asked.

    Opened paused and resumed here: the run is short enough to start and finish between two refreshes of the
    panels, and waiting to see it "running" then timed out (a race of the test's, not of the app's).
    """
    epochs = 12
    flags = ["--epochs", str(epochs), "--layers", "2", "--dropout", "0.3", "--hidden", "32", "--seed", "3"]
    app = make_app(*flags, "--paused")
    generated = 0
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "paused", "the trainer, paused before its first batch")
        await press(pilot, "f5")
        while generating and app.run_control.trainer is not None and app.run_control.trainer.state.epoch < epochs:
            box = await generate(pilot, app, "分开", length="100", temp="1.0")
            assert box.last_error is None
            generated += app.run_control.trainer.state.epoch < epochs  # answered while training went on
        await wait_for(pilot, lambda: state(app) == "finished", f"{epochs} epochs")
        return [e.perplexity for e in app.run_control.epochs_seen], generated


async def test_generating_while_training_leaves_the_result_unchanged() -> None:
    quiet, _ = await _perplexities(generating=False)
    busy, generated = await _perplexities(generating=True)
    assert generated >= 3  # it really generated during training
    assert busy == quiet  # exactly: sampling uses its own generator, and a copy of the weights


# ----- the corpus on a fresh machine -----


class _Trickle(http.server.ThreadingHTTPServer):
    """Serves one file slowly (chunk by chunk), or stalls after its first chunk: a download to watch, or to quit."""

    def __init__(self, content: bytes, delay: float, stall: bool = False) -> None:
        self.content, self.delay, self.stall = content, delay, stall
        self.released = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.content)))
                self.end_headers()
                for start in range(0, len(server.content), 4096):
                    self.wfile.write(server.content[start : start + 4096])
                    self.wfile.flush()
                    if server.stall:
                        server.released.wait(60)
                        return
                    time.sleep(server.delay)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{CORPUS_FILENAME}"

    def close(self) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()


@pytest.fixture
def trickle(corpus_path: Path) -> Iterator[Callable[..., _Trickle]]:
    servers: list[_Trickle] = []

    def start(delay: float = 0.05, stall: bool = False) -> _Trickle:
        servers.append(_Trickle(corpus_path.read_bytes(), delay, stall))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def no_local_corpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As on a fresh machine: no --corpus, no $RNN_TUI_CORPUS, nothing in data/; the cache is tmp_path/cache."""
    monkeypatch.delenv("RNN_TUI_CORPUS", raising=False)
    monkeypatch.setattr("engine.data.corpus.default_corpus_paths", lambda: [tmp_path / "data" / CORPUS_FILENAME])
    return tmp_path / "cache"


class _RecordingApp(RnnTuiApp):
    """The app, remembering every loading stage the status panel was given."""

    CSS_PATH = str(PROJECT_ROOT / "tui" / "app" / "app.tcss")  # a relative path would be read beside this test
    stages: list[str]

    def on_loading(self, message: Loading) -> None:
        self.stages.append(message.stage)
        super().on_loading(message)


async def test_download_progress_shows_in_the_status_panel(
    trickle: Callable[..., _Trickle], no_local_corpus: Path
) -> None:
    server = trickle(delay=0.05)  # 51 KiB in 13 chunks: about 0.6 s to watch
    app = _RecordingApp(app_options(parse([*FAST, "--epochs", "1", "--corpus-url", server.url()])))
    app.stages = []
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "downloading the book's corpus" in shown(app), "the download in the status")
        await wait_for(pilot, lambda: state(app) == "finished", "training on the downloaded corpus")
        downloads = [s for s in app.stages if s.startswith("downloading")]
        assert len(downloads) >= 5 and downloads[-1].endswith("51 / 51 KiB (100%)"), downloads
        percents = [int(s.rsplit("(", 1)[1].rstrip("%)")) for s in downloads]
        assert percents == sorted(percents)
        assert (no_local_corpus / CORPUS_FILENAME).is_file()
        assert app.run_control.status.vocab_size == 1027
        assert "jaychou_lyrics.txt.zip" in shown(app)  # which corpus is loaded
        assert any("downloaded the book's corpus to" in line for line in app.main.samples.lines_written)


async def test_offline_the_app_says_it_trains_on_the_built_in_corpus(no_local_corpus: Path) -> None:
    app = make_app("--epochs", "1", "--corpus-url", "http://127.0.0.1:9/jaychou_lyrics.txt.zip")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) == "finished", "training on the built-in corpus")
        text = shown(app)
        # Status: one short line says which corpus, whole; Samples, in order, why and how to get the book's.
        words = " ".join(text.split())
        assert "no corpus found: training on the built-in sample corpus train " in words, text
        assert "not the book's lyrics" in text and "download" not in text and "…" not in text, text
        assert app.run_control.status.vocab_size == 436  # its first 3,881 characters: a tenth held out, one tested
        written = app.main.samples.lines_written
        failed = next(i for i, line in enumerate(written) if "downloading the book's corpus failed" in line)
        assert "For the book's lyrics, get jaychou_lyrics.txt.zip from d2l-ai/d2l-zh" in written[failed]
        assert any("no corpus found" in line for line in written[:failed])
        assert app.run_control.config is not None and app.run_control.config.prefixes == ("等你", "春天")
        assert not any(no_local_corpus.rglob("*.zip"))


QUIT_DURING_DOWNLOAD = """
import sys
import engine.data.corpus
from tui.app import RnnTuiApp

engine.data.corpus.default_corpus_paths = lambda: []  # a fresh machine: no data/ anywhere

async def auto(pilot):
    app = pilot.app
    # The auto pilot starts as soon as the app is ready: the main screen's panels may not be composed yet.
    while not app.main.query("#status") or "downloading the book's corpus" not in app.main.status.render_status().plain:
        await pilot.pause(0.05)
    print("quitting", flush=True)
    await pilot.press("ctrl+q")

original = RnnTuiApp.run
RnnTuiApp.run = lambda self, **kw: original(self, headless=True, size=(100, 30), auto_pilot=auto)
from tui.main import main
main(sys.argv[1:])
"""


def test_quit_during_a_stalled_download_is_prompt(trickle: Callable[..., _Trickle], tmp_path: Path) -> None:
    server = trickle(stall=True)  # sends 4 KiB, then nothing: requests would wait 30 s for more
    env = {k: v for k, v in os.environ.items() if k != "RNN_TUI_CORPUS"}
    env.update(OMP_NUM_THREADS="1", RNN_TUI_CACHE_DIR=str(tmp_path / "cache"))
    argv = [*FAST, "--epochs", "1", "--corpus-url", server.url()]
    process = subprocess.Popen(
        [sys.executable, "-c", QUIT_DURING_DOWNLOAD, *argv],
        cwd=tmp_path,  # no data/ here: the corpus must be downloaded
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        asked = time.monotonic()
        stderr = process.stderr.read() if process.stderr is not None and process.poll() is not None else ""
        assert line.strip() == "quitting", (line, stderr)
        code = process.wait(timeout=20)
        took = time.monotonic() - asked
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0
    assert took < 2.5, f"quitting took {took:.1f} s"
    assert not any((tmp_path / "cache").rglob("*.zip"))  # the half download left nothing in the cache


# ----- helpers -----


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)  # costs no disk, and no memory: it is refused before it is read
    return path


def has_error(form: SettingsForm, name: str) -> bool:
    return name in form.errors


def has_no_error(form: SettingsForm, name: str) -> bool:
    return name not in form.errors


def mentioned_since(app: RnnTuiApp, path: Path, before: int) -> bool:
    """The Samples panel names path more often than the before times it had."""
    return _mentions(app, path) > before


def _mentions(app: RnnTuiApp, path: Path) -> int:
    return sum(1 for line in app.main.samples.lines_written if path.name in line)


def BOOK_BYTES() -> bytes:  # read lazily, only by the rows that need it
    return BOOK_CORPUS.read_bytes()


def test_trainer_thread_count_helper_sees_a_running_trainer(corpus_path: Path) -> None:
    """trainer_threads() must see a thread inside Trainer.run, or the cycle test above could not fail."""
    torch.set_num_threads(1)
    trainer = Trainer(TrainConfig(corpus=str(corpus_path), hidden=16, epochs=1000, seed=0), load_corpus(corpus_path, 0))
    thread = threading.Thread(target=trainer.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not trainer_threads() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert trainer_threads() == [thread]
    finally:
        trainer.stop()
        thread.join(10)
    assert not trainer_threads()
