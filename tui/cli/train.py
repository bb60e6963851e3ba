"""`rnn-tui train --headless`: a run that prints the book's report lines, writes its metrics and saves its
checkpoints, stopped cleanly by a signal."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import describe_layers, flag_name, ineffective_settings
from engine.errors import worded
from tui.cli.flags import add_train_arguments, check_outputs, config_overrides
from tui.cli.lines import PROG, download_bar, say

if TYPE_CHECKING:
    from engine.lab.ngram import NgramTable


def add_train_parser(commands: Any) -> None:
    train = commands.add_parser("train", help="train (in the app, or --headless printing the book's lines)")
    add_train_arguments(train)
    train.add_argument(
        "--headless", action="store_true", help="train without the app, printing the book's report lines"
    )
    train.add_argument("--paused", action="store_true", help="open the app with training paused")


BLANK_SAMPLES_NOTE = "   (blank so far: the model's likeliest next character is still a space"


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
    from engine import events
    from engine.lab.verdict import counting_table, verdict
    from engine.limits import checkpoint_bytes
    from engine.outputs import OutputError, check_free_space, save_with_rescue
    from engine.precision import fp32_hint
    from engine.session import describe_held_out, open_session
    from engine.signals import StopOnSignals

    overrides = config_overrides(args)
    metrics: MetricsWriter | None = None
    counting: NgramTable | None = None  # the counting baselines, set once the corpus is read

    def printer(event: events.Event) -> None:
        if isinstance(event, events.Started):
            layers = describe_layers(session.config.layers)
            say(
                f"training {session.config.cell} ({session.config.hidden} hidden, {layers}) on {event.corpus}: "
                f"{event.num_chars:,} characters, vocabulary {event.vocab_size:,}, "
                f"{event.batches_per_epoch} batches per epoch, device {event.device}, precision {event.precision}, "
                f"seed {event.seed}"
            )
            say(describe_held_out(session.config, session.corpus))
            config, trainer = session.config, session.trainer
            rows = config.batch_size * config.num_steps
            hint = fp32_hint(trainer.precision, trainer.device, event.vocab_size, config.hidden, rows, cell=config.cell)
            for line in (trainer.precision.warning, hint):
                if line:
                    say(line)
        elif isinstance(event, events.EpochEnd):
            if metrics is not None:
                record = event.record()
                if counting is not None:  # the counting yardstick, chosen and read on held-out (test: the last)
                    order, value = counting.best()
                    record.update(counting_best=value, counting_order=order)
                    chosen = counting.best_test()
                    if event.test_perplexity is not None and chosen is not None:
                        record["counting_test"] = chosen[1]
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
        elif isinstance(event, events.Samples):
            epoch = session.trainer.state.history[-1]
            say(epoch.book_line(), sys.stdout)
            held_out = epoch.held_out_line(session.corpus.vocab.has_unk)  # ends with the clipped share
            gradients = epoch.gradient_line()
            if held_out:
                say(held_out, sys.stdout)
                judged = verdict(counting, epoch.val_perplexity) if counting is not None else None
                if judged is not None:
                    say(judged.line(), sys.stdout)
            elif gradients:  # held-out evaluation off: the gradient norms and clipped share on a line of their own
                say(gradients, sys.stdout)
            memory = epoch.memory_line()
            if memory:
                say(memory, sys.stdout)
            for _, text in event.samples:
                say(f" - {text}", sys.stdout)
            generated = [text[len(prefix) :] for prefix, text in event.samples]
            if not told_blank and any(g and not g.strip() for g in generated):  # once: a newcomer's first question
                told_blank.append(True)
                greedy = session.trainer.config.temperature is None
                say(BLANK_SAMPLES_NOTE + (", and greedy sampling picks it every time)" if greedy else ")"), sys.stdout)
        elif isinstance(event, events.Failed):
            failed.append(event)
            say(f"{PROG}: {event.message}")
        elif isinstance(event, events.Finished):
            finished.append(event)
            if event.reason:
                say(event.reason)
            elif event.stopped:
                say(f"stopped after {session.trainer.position()}")

    failed: list[events.Failed] = []
    finished: list[events.Finished] = []
    told_blank: list[bool] = []  # the blank samples explained (once a run)
    lesson = None
    if args.lesson:
        from engine.lessons import find_lesson

        lesson = find_lesson(args.lesson)
        say(f"lesson {lesson.name}: {lesson.title} ({lesson.exercise})")
        say(f"  question: {lesson.question}")
        say(f"  watch: {lesson.watch}")
    session = open_session(
        overrides,
        resume=args.resume,
        corpus_url=args.corpus_url,
        listener=printer,
        threads=args.threads,
        progress=download_bar,
        save_best=args.save_best,
    )
    trainer = session.trainer
    counting = counting_table(session.corpus, session.config.num_steps)
    for note in session.notes:
        say(worded(note, flag_name))
    for note in ineffective_settings(session.config):
        say(f"{PROG}: warning: {note}")
    for prefix in session.config.prefixes:
        unknown = trainer.vocab.unknown(prefix)
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:5])
            say(f"{PROG}: warning: prefix {prefix!r} is not sampled: {shown} not in this corpus's vocabulary")
    # Checked again now the corpus actually read is known (a resumed run's comes from its checkpoint), and the
    # checkpoint's size with it: a disk too full for it is found now, not after the run.
    check_outputs(args, session.corpus.source)
    if args.save:
        size = checkpoint_bytes(session.config, len(trainer.vocab))
        check_free_space(Path(args.save).expanduser(), size, "the checkpoint", flag="--save")
    trained, wanted = trainer.state.epoch, session.config.epochs
    nothing_to_train = trained >= wanted
    if nothing_to_train:  # a resumed run that has done all it was asked: say so rather than print nothing
        say(
            f"nothing to train: the checkpoint has trained {trained} epoch{'s' * (trained != 1)} "
            f"and --epochs is {wanted}; pass --epochs above {trained} to go on"
        )
    metrics = MetricsWriter(args.metrics) if args.metrics else None
    code = 0
    # SIGINT, SIGTERM, SIGHUP: stop after the batch, then save; a second one leaves at once (engine.signals).
    with StopOnSignals(trainer.stop, say=say) as signals:
        try:
            if not nothing_to_train:
                trainer.run()
        finally:
            if metrics is not None:
                metrics.close()
        if failed:
            code = 1
        if signals.received is not None:
            code = signals.exit_code
        if args.save:
            written: list[Any] = []
            try:
                outcome = save_with_rescue(lambda path: written.append(trainer.save(str(path))), args.save)
            except OutputError as exc:  # nowhere could take it: the run trained, so not a bad-input 2
                say(f"{PROG}: error: {exc}; the weights could not be saved anywhere")
                return 1
            position = written[-1].position(trainer.batches_per_epoch)
            if outcome.failure is None:
                say(f"saved checkpoint {args.save} ({position})")
            else:
                say(f"{PROG}: error: {outcome.failure}; the weights ({position}) were saved to {outcome.path} instead")
                code = 1
    if lesson is not None and not nothing_to_train:
        from tui.lesson_report import observe_and_collect

        observation, elsewhere, problem = observe_and_collect(
            lesson, trainer, failed[0].message if failed else "", args.observations
        )
        say(f"lesson {lesson.name}: {observation.text}", sys.stdout)
        if problem:
            say(f"{PROG}: warning: {problem}")
        elif elsewhere:
            say(elsewhere)
        elif args.observations:
            say(f"observation appended to {args.observations}")
    if trainer.best_save_failure is not None:
        say(f"{PROG}: warning: --save-best stopped being written: {trainer.best_save_failure}")
    best = trainer.saved_best
    if best is not None:
        say(
            f"saved the best held-out epoch to {args.save_best} (epoch {best.epoch}, held-out perplexity "
            f"{best.val_perplexity:f})"
        )
    test = finished[-1].test if finished else None
    if test is not None:  # the run's last line: the figure no choice read
        say(test.describe())
        judged = verdict(counting, None, test.perplexity) if counting is not None else None
        if judged is not None:
            say(judged.line(), sys.stdout)
        say(test.line(), sys.stdout)
    return code
