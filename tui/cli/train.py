"""`rnn-tui train --headless`: a run that prints the book's report lines, writes its metrics and saves its
checkpoints, stopped cleanly by a signal."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import events
from engine.config import ineffective_settings, stream_length
from tui.cli.flags import add_train_arguments, check_outputs, config_overrides
from tui.cli.headless_printer import HeadlessPrinter
from tui.cli.lines import PROG, download_bar, say

if TYPE_CHECKING:
    from engine.lessons import Lesson
    from engine.session import Session


def add_train_parser(commands: Any) -> None:
    train = commands.add_parser("train", help="train (in the app, or --headless printing the book's lines)")
    add_train_arguments(train)
    train.add_argument(
        "--headless", action="store_true", help="train without the app, printing the book's report lines"
    )
    train.add_argument("--paused", action="store_true", help="open the app with training paused")


class MetricsWriter:
    """Appends one JSON object per epoch; a write that fails (a full disk) is told once and the run goes on."""

    def __init__(self, path: str) -> None:
        from engine.outputs import open_for_appending

        self.path = path
        self.file: Any = open_for_appending(path, "--metrics")  # closed by close()

    def write(self, text: str) -> None:
        self._attempt(lambda file: file.write(text))

    def flush(self) -> None:
        self._attempt(lambda file: file.flush())

    def _attempt(self, action: Any) -> None:
        if self.file is None:
            return
        try:
            action(self.file)
        except OSError as exc:
            from engine.outputs import explain_os_error

            say(
                f"{PROG}: warning: could not write metrics to {self.path}: {explain_os_error(exc)}; "
                "the run goes on without them"
            )
            self.close()

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):  # the failed flush's data cannot be written either
                self.file.close()
            self.file = None


def run_headless(args: argparse.Namespace) -> int:
    """The run's steps in order: the lesson announced, the session opened, what it warns of, its files checked, the
    training under signals, the save, and what the run showed. Returns the exit code."""
    from engine.lessons import find_lesson
    from engine.session import open_session

    printer = HeadlessPrinter()
    lesson = find_lesson(args.lesson) if args.lesson else None
    if lesson is not None:
        printer.lesson(lesson)
    session = open_session(
        config_overrides(args),
        resume=args.resume,
        corpus_url=args.corpus_url,
        threads=args.threads,
        progress=download_bar,
        save_best=args.save_best,
    )
    run = HeadlessRun(args, session, printer)
    run.warn()
    run.check_files()
    code = run.train()
    if run.weights_lost:  # nothing more is said: the error is the run's last line
        return code
    if lesson is not None and not run.nothing_to_train:
        run.observe(lesson)
    run.report_best()
    run.report_test()
    return code


class HeadlessRun:
    """A headless run's steps once its session is open; it hears the trainer's events and hands each to the printer
    with what its lines show."""

    def __init__(self, args: argparse.Namespace, session: Session, printer: HeadlessPrinter) -> None:
        from engine.lab.verdict import counting_table

        self.args = args
        self.session = session
        self.trainer = session.trainer
        self.printer = printer
        self.counting = counting_table(session.corpus, stream_length(session.config))  # the counting baselines
        self.metrics: MetricsWriter | None = None  # opened by train()
        self.failed: list[events.Failed] = []
        self.finished: list[events.Finished] = []
        self.nothing_to_train = False
        self.weights_lost = False  # --save could be written nowhere
        session.trainer.listener = self.on_event

    def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Started):
            self.printer.started(event, self.session)
        elif isinstance(event, events.EpochEnd):
            self.write_metrics(event)
        elif isinstance(event, events.Samples):
            self.printer.epoch(self.trainer.state.history[-1], self.session.corpus.vocab.has_unk, self.counting)
            self.printer.samples(event, greedy=self.trainer.config.temperature is None)
        elif isinstance(event, events.Failed):
            self.failed.append(event)
            self.printer.failed(event)
        elif isinstance(event, events.Finished):
            self.finished.append(event)
            self.printer.finished(event, self.trainer.position())

    def write_metrics(self, event: events.EpochEnd) -> None:
        """--metrics: the epoch's record, with the counting yardstick chosen and read on held-out (test: the last)."""
        if self.metrics is None:
            return
        record = event.record()
        if self.counting is not None:
            order, value = self.counting.best()
            record.update(counting_best=value, counting_order=order)
            chosen = self.counting.best_test()
            if event.test_perplexity is not None and chosen is not None:
                record["counting_test"] = chosen[1]
        self.metrics.write(json.dumps(record) + "\n")
        self.metrics.flush()

    def warn(self) -> None:
        """The session's notes, settings that do nothing, prefixes the corpus cannot sample."""
        for note in self.session.notes:
            self.printer.note(note)
        for note in ineffective_settings(self.session.config):
            self.printer.warning(note)
        for prefix in self.session.config.prefixes:
            unknown = self.trainer.vocab.unknown(prefix)
            if unknown:
                self.printer.prefix_not_sampled(prefix, unknown)

    def check_files(self) -> None:
        """Checked again now the corpus actually read is known (a resumed run's comes from its checkpoint), and the
        checkpoint's size with it: a disk too full for it is found now, not after the run."""
        from engine.limits import checkpoint_bytes
        from engine.outputs import check_free_space

        check_outputs(self.args, self.session.corpus.source)
        if self.args.save:
            size = checkpoint_bytes(self.session.config, len(self.trainer.vocab))
            check_free_space(Path(self.args.save).expanduser(), size, "the checkpoint", flag="--save")

    def train(self) -> int:
        """Train (unless a resumed run has done all it was asked), then save; SIGINT, SIGTERM, SIGHUP stop after the
        batch, then save; a second one leaves at once (engine.signals). Returns the exit code."""
        from engine.signals import StopOnSignals

        trained, wanted = self.trainer.state.epoch, self.session.config.epochs
        self.nothing_to_train = trained >= wanted
        if self.nothing_to_train:  # say so rather than print nothing
            self.printer.nothing_to_train(trained, wanted)
        self.metrics = MetricsWriter(self.args.metrics) if self.args.metrics else None
        code = 0
        with StopOnSignals(self.trainer.stop, say=say) as signals:
            try:
                if not self.nothing_to_train:
                    self.trainer.run()
            finally:
                if self.metrics is not None:
                    self.metrics.close()
            if self.failed:
                code = 1
            if signals.received is not None:
                code = signals.exit_code
            if self.args.save:
                code = self.save(code)
        return code

    def save(self, code: int) -> int:
        """--save, or a rescue path when it cannot be written: the exit code becomes 1 when the weights went elsewhere
        or nowhere (the run trained, so not a bad-input 2)."""
        from engine.outputs import OutputError, save_with_rescue

        written: list[Any] = []
        try:
            outcome = save_with_rescue(lambda path: written.append(self.trainer.save(str(path))), self.args.save)
        except OutputError as exc:
            self.printer.not_saved(str(exc))
            self.weights_lost = True
            return 1
        position = written[-1].position(self.trainer.batches_per_epoch)
        if outcome.failure is None:
            self.printer.saved(self.args.save, position)
            return code
        self.printer.saved_elsewhere(outcome.failure, position, str(outcome.path))
        return 1

    def observe(self, lesson: Lesson) -> None:
        """A lesson's observation of the run, its row appended to --observations."""
        from tui.lesson_report import observe_and_collect

        failure = self.failed[0].message if self.failed else ""
        observation, elsewhere, problem = observe_and_collect(lesson, self.trainer, failure, self.args.observations)
        self.printer.observation(lesson, observation, elsewhere, problem, self.args.observations)

    def report_best(self) -> None:
        if self.trainer.best_save_failure is not None:
            self.printer.warning(f"--save-best stopped being written: {self.trainer.best_save_failure}")
        if self.trainer.saved_best is not None:
            self.printer.best_saved(self.args.save_best, self.trainer.saved_best)

    def report_test(self) -> None:
        test = self.finished[-1].test if self.finished else None
        if test is not None:  # the run's last line: the figure no choice read
            self.printer.test(test, self.counting)
