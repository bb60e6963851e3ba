"""A checkpoint's sample timeline in the app's Lab → Timeline tab, whether it is loaded to continue training (ctrl+o →
Continue, or --resume) or only to generate (ctrl+o → Just generate): driven by Textual's pilot on the real corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pilot_helpers import wait_for
from textual.pilot import Pilot
from textual.widgets import Input, Static, TabbedContent

from engine.config import TrainConfig
from engine.data.corpus import Corpus
from engine.lab.copies import index_for, sample_copy
from engine.trainer import Trainer
from tui.app import RnnTuiApp
from tui.app.screens import ConfirmScreen
from tui.app.screens.lab import LabScreen
from tui.app.screens.lab_timeline import TimelinePane
from tui.cli import app_options, parse

SIZE = (80, 24)  # the smallest usual terminal: the timeline is read there too
TINY = ["--hidden", "16", "--threads", "1", "--max-chars", "2000", "--val-chars", "300", "--pred-len", "20"]


def saved_run(tmp_path: Path, corpus_path: Path, corpus: Corpus) -> tuple[Trainer, Path]:
    """A tiny GRU of the book's corpus trained 3 epochs, reporting samples at each: three records on its timeline."""
    config = TrainConfig(
        corpus=str(corpus_path), seed=3, cell="gru", hidden=24, epochs=3, pred_period=1, pred_len=30, lr=0.01
    )
    trainer = Trainer(config, corpus)
    trainer.run()
    path = tmp_path / "gru.ckpt"
    trainer.save(str(path))
    assert [record.epoch for record in trainer.timeline()] == [1, 2, 3]
    return trainer, path


async def open_timeline(pilot: Pilot[Any], app: RnnTuiApp) -> TimelinePane:
    await pilot.press("f11")
    await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), "the lab")
    app.screen.query_one(TabbedContent).active = "lab-timeline"
    return app.screen.query_one(TimelinePane)


async def load(pilot: Pilot[Any], app: RnnTuiApp, path: Path, button: str) -> None:
    await pilot.press("ctrl+o")
    app.screen.query_one("#path", Input).value = str(path)
    await pilot.click(f"#{button}")


async def test_a_checkpoint_loaded_to_generate_shows_its_own_timeline(
    tmp_path: Path, corpus_path: Path, corpus: Corpus
) -> None:
    trained, path = saved_run(tmp_path, corpus_path, corpus)
    records = trained.timeline()
    app = RnnTuiApp(app_options(parse([*TINY, "--epochs", "1"])))  # its own run reports once, at its last epoch
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "the app's own run")
        await load(pilot, app, path, "just-generate")
        await wait_for(pilot, lambda: app.run_control.status.state == "checkpoint", "the checkpoint loaded")
        pane = await open_timeline(pilot, app)
        await wait_for(pilot, lambda: len(pane.entries) == 3, "the checkpoint's three reports")
        assert [entry.epoch for entry in pane.entries] == [1, 2, 3] and pane.copies_measured
        scrub = str(pane.query_one("#timeline-scrub", Static).render())
        assert scrub.startswith("gru.ckpt  epoch 3  report 3 of 3")  # whose timeline, at its newest report
        for entry, record in zip(pane.entries, records, strict=True):
            assert tuple((s.prefix, s.text) for s in entry.samples) == record.samples
            for sample in entry.samples:  # copies measured against the text it trained on, read again
                assert sample.copy == sample_copy(index_for(trained.corpus.text), sample.text, len(sample.prefix))
        await pilot.press("home")
        body = str(pane.query_one("#timeline-text", Static).render())
        assert pane.index == 0 and records[0].samples[0][1] in body and "generated characters, longest copy" in body
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LabScreen), "the lab closed")
        # F7 trains again: the timeline follows the new run, not the checkpoint any more.
        await pilot.press("f7")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ConfirmScreen) or app.run_control.status.state != "checkpoint",
            "F7's question, or the new run",
        )
        if isinstance(app.screen, ConfirmScreen):
            await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "the new run")
        pane = await open_timeline(pilot, app)
        await wait_for(pilot, lambda: len(pane.entries) == 1 and not pane.source_label, "the new run's one report")
        assert pane.entries[0].epoch == 1


async def test_a_checkpoint_continued_keeps_its_timeline_and_adds_to_it(
    tmp_path: Path, corpus_path: Path, corpus: Corpus
) -> None:
    trained, path = saved_run(tmp_path, corpus_path, corpus)
    app = RnnTuiApp(app_options(parse([*TINY, "--epochs", "1"])))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "the app's own run")
        app.main.settings.query_one("#setting-epochs", Input).value = "4"  # ctrl+o → Continue trains to the form's 4
        await load(pilot, app, path, "continue")
        await wait_for(
            pilot,
            lambda: app.run_control.status.state == "finished" and app.run_control.status.epoch == 4,
            "the checkpoint continued to epoch 4",
        )
        pane = await open_timeline(pilot, app)
        await wait_for(pilot, lambda: len(pane.entries) == 4, "three saved reports and the new one")
        assert [entry.epoch for entry in pane.entries] == [1, 2, 3, 4] and not pane.source_label
        first = pane.entries[0].samples
        assert tuple((s.prefix, s.text) for s in first) == trained.timeline()[0].samples


async def test_a_checkpoint_resumed_from_the_command_line_shows_its_timeline(
    tmp_path: Path, corpus_path: Path, corpus: Corpus
) -> None:
    _, path = saved_run(tmp_path, corpus_path, corpus)
    app = RnnTuiApp(app_options(parse(["--resume", str(path), "--threads", "1", "--paused"])))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.run_control.trainer is not None, "the resumed trainer")
        pane = await open_timeline(pilot, app)
        await wait_for(pilot, lambda: len(pane.entries) == 3, "the checkpoint's three reports")
        assert "epoch 3" in str(pane.query_one("#timeline-scrub", Static).render())
        app.run_control.cancel()


async def test_a_loaded_checkpoint_whose_text_is_gone_shows_its_samples_unmarked(
    tmp_path: Path, corpus: Corpus
) -> None:
    from tui.main import main

    text = tmp_path / "lyrics.txt"
    text.write_text(corpus.text[:3000], encoding="utf-8")
    path = tmp_path / "gone.ckpt"
    words = ["train", "--headless", "--corpus", str(text), "--hidden", "16", "--epochs", "2", "--pred-period", "1"]
    assert main([*words, "--threads", "1", "--save", str(path)]) == 0
    text.unlink()  # the corpus it trained on is no longer on this machine
    app = RnnTuiApp(app_options(parse([*TINY, "--epochs", "1"])))  # 2,000 characters: another vocabulary
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.state == "finished", "the app's own run")
        await load(pilot, app, path, "just-generate")
        await wait_for(pilot, lambda: app.run_control.status.state == "checkpoint", "the checkpoint loaded")
        pane = await open_timeline(pilot, app)
        await wait_for(pilot, lambda: len(pane.entries) == 2, "the checkpoint's two reports")
        assert not pane.copies_measured
        body = pane.query_one("#timeline-text", Static).render()
        assert "copies not measured" in str(body) and "copied" not in str(body)
        assert not any("reverse" in str(span.style) for span in getattr(body, "spans", []))


async def test_a_checkpoint_loaded_to_generate_shows_its_own_figures_not_those_of_the_run_it_stopped(
    tmp_path: Path, corpus_path: Path, corpus: Corpus
) -> None:
    trained, path = saved_run(tmp_path, corpus_path, corpus)
    history = trained.state.history
    app = RnnTuiApp(app_options(parse([*TINY, "--epochs", "300"])))  # still training when the checkpoint comes
    async with app.run_test(size=SIZE) as pilot:
        control = app.run_control
        await wait_for(pilot, lambda: control.status.epoch >= 4, "the app's own run past the checkpoint's epochs")
        stopped = control.current
        await load(pilot, app, path, "just-generate")
        await wait_for(pilot, lambda: control.status.state == "checkpoint", "the checkpoint loaded")
        assert stopped is not None
        await wait_for(pilot, lambda: stopped.ended, "the stopped run's thread to end")  # its last events arrived
        status = control.status
        assert (status.epoch, status.epochs, status.perplexity) == (3, 3, history[-1].perplexity)
        held_out = [(e.epoch, e.val_perplexity) for e in history if e.val_perplexity is not None]
        assert status.best_val == (min(held_out, key=lambda pair: pair[1]) if held_out else None)  # not the app's run's
        assert status.chars_per_second is None  # nothing trains: no speed is claimed
        plot = app.main.plot
        assert [epoch for epoch, _ in plot.points] == [1, 2, 3]
        assert plot.baselines == []  # the n-gram lines counted the app's 2,000 characters, not its 10,000
        shown = app.main.status.render_status().plain
        assert "epoch 3/3" in shown and "gru 24×1" in shown, shown
        # F10 still compares the run the checkpoint stopped.
        assert any(run.origin == f"run {stopped.run_id}" for run in control.run_book.runs), control.run_book.runs
