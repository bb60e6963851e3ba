"""The command line: argument parsing (no torch import) and the headless commands train, generate, shapes."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from engine.config import (
    CELLS,
    SETTINGS,
    SETTINGS_BY_NAME,
    TrainConfig,
    check_seed,
    describe_layers,
    flag_name,
    ineffective_settings,
    preset_config,
    to_argv,
)
from engine.errors import ConfigError, RnnTuiError, worded
from engine.setting_kinds import GROUPS
from tui.lab_commands import add_lab_parser
from tui.setting_flags import add_setting_argument

if TYPE_CHECKING:  # the sweep is imported when a sweep command runs
    from engine.lab.ngram import NgramTable
    from engine.sweep import SweepSpec

PROG = "rnn-tui"


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage block) and exits with code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")




def add_train_arguments(parser: argparse.ArgumentParser, help_for: dict[str, str] | None = None) -> None:
    """Flags shared by `rnn-tui` (the app), `rnn-tui train`, `sweep` and `serve`: every TrainConfig setting (from its
    declaration, engine.config.SETTINGS) and the run's own flags. Defaults live in TrainConfig, not here."""
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    for declared in SETTINGS:
        add_setting_argument(groups[declared.group], declared, (help_for or {}).get(declared.name))
    groups["corpus"].add_argument(
        "--corpus-url", metavar="URL", help="where to download the book's corpus from when none is found"
    )
    groups["training"].add_argument(
        "--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)"
    )
    group = parser.add_argument_group("lessons")
    group.add_argument(
        "--lesson",
        metavar="NAME",
        help="a guided run of one of chapter 6's exercises: its settings (a flag given with it wins), its question, "
        "and an observation from your run at its end (rnn-tui lessons lists them)",
    )
    group.add_argument(
        "--observations",
        metavar="CSV",
        help="with --lesson: append the run's observation to this CSV (one row a run; a class's in one file)",
    )
    group = parser.add_argument_group("files")
    group.add_argument("--save", metavar="CKPT", help="save a checkpoint here when training ends or is stopped")
    group.add_argument(
        "--save-best",
        metavar="CKPT",
        help="save a checkpoint here at each epoch whose held-out perplexity is the best so far",
    )
    group.add_argument("--resume", metavar="CKPT", help="continue training from a checkpoint")
    group.add_argument("--metrics", metavar="FILE", help="append one JSON object per epoch to FILE")
    group.add_argument(
        "--force",
        action="store_true",
        help="let --save, --save-best or --metrics replace an existing file that is not rnn-tui's (never the corpus)",
    )


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rnn-tui")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Train a character-level RNN on Jay Chou lyrics and watch it learn (Dive into Deep Learning §6.5).",
        epilog="With no command, opens the app; it takes the flags of `rnn-tui train`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    add_train_arguments(parser)
    parser.add_argument("--paused", action="store_true", help="open the app with training paused")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="train (in the app, or --headless printing the book's lines)")
    add_train_arguments(train)
    train.add_argument(
        "--headless", action="store_true", help="train without the app, printing the book's report lines"
    )
    train.add_argument("--paused", action="store_true", help="open the app with training paused")

    gen = commands.add_parser("generate", help="generate text from a checkpoint")
    gen.add_argument("--checkpoint", required=True, metavar="CKPT")
    gen.add_argument(
        "--prefix",
        action="append",
        dest="prefixes",
        metavar="TEXT",
        help="repeatable (default: the checkpoint's prefixes)",
    )
    gen.add_argument(
        "--len", type=int, default=50, dest="length", metavar="N", help="characters to generate (default 50)"
    )
    gen.add_argument("--temperature", type=float, metavar="T", help="sample with temperature T > 0 (default: greedy)")
    gen.add_argument("--top-k", type=int, metavar="K", help="sample only among the K most likely characters")
    gen.add_argument("--seed", type=int, metavar="N")
    gen.add_argument(
        "--explain", type=int, metavar="K", help="print the top K candidates for every generated character"
    )

    add_sweep_parser(commands)
    add_lab_parser(commands, add_setting_argument)
    commands.add_parser(
        "lessons",
        help="list the lessons (--lesson NAME): chapter 6's exercises as guided runs",
        description="Each lesson is a preset, a question, what to watch, and an observation from your run at its end.",
    )

    serve = commands.add_parser(
        "serve",
        help="serve the app to browsers (a classroom): one app process per tab, each confined to its own files",
        description="Serve the app to web browsers: each tab gets its own app process. The train flags given here "
        "are fixed for every session.",
    )
    group = serve.add_argument_group("server")
    group.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    group.add_argument("--port", type=int, default=8000, help="(default 8000)")
    group.add_argument(
        "--public-url",
        metavar="URL",
        help="the address students open, when served behind a reverse proxy (a path alone behind JupyterHub)",
    )
    group.add_argument(
        "--unix-socket", metavar="PATH", help="listen on this Unix socket instead of --host/--port (JupyterHub)"
    )

    def count_or_auto(text: str) -> int | str:
        return text if text == "auto" else int(text)

    count_or_auto.__name__ = "count (or auto)"  # argparse's "invalid … value" names it
    group.add_argument(
        "--max-sessions",
        type=count_or_auto,
        metavar="N",
        help="at most N tabs at once; auto (the default): one per CPU core and per GiB of memory available",
    )
    group.add_argument(
        "--seat-memory", type=int, metavar="MIB", help="memory one session may use (default: the machine's / N)"
    )
    group.add_argument(
        "--seat-disk", type=int, metavar="MIB", help="disk one session's files may take (default: free / 2N, ≤ 1024)"
    )
    group.add_argument(
        "--workdir", metavar="DIR", help="each session's files go in a fresh directory here (default: a temporary one)"
    )
    group.add_argument(
        "--idle-minutes",
        type=float,
        default=10.0,
        metavar="M",
        help="pause a session's training after M minutes without input; 0 never (default 10)",
    )
    group.add_argument(
        "--release-minutes",
        type=float,
        default=60.0,
        metavar="M",
        help="after M minutes without input a session saves, offers its weights as a download and gives its seat "
        "back; 0 never (default 60)",
    )
    group.add_argument(
        "--first-key-minutes",
        type=float,
        default=5.0,
        metavar="M",
        help="a tab that sends no key and no click within M minutes of opening gives its seat back; 0 never "
        "(default 5)",
    )
    group.add_argument(
        "--seats-per-address",
        type=int,
        default=0,
        metavar="N",
        help="at most N sessions from one address at once; 0 (the default): no limit (a class behind one NAT "
        "shares an address)",
    )
    group.add_argument(
        "--reload-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="a tab's app keeps running S seconds after its tab goes, so that a reload finds it as it was; 0: it ends "
        "with its tab (default 60)",
    )
    group.add_argument(
        "--token",
        metavar="CODE",
        help="the join code students type (default: none on 127.0.0.1; a fresh one, printed, on any other --host)",
    )
    group.add_argument("--log", metavar="FILE", help="also append each event (joined, left, refused…) as JSON lines")
    add_train_arguments(serve)
    serve.add_argument("--paused", action="store_true", help="open every session with training paused")

    shapes = commands.add_parser("shapes", help="print the shapes the recurrent layer returns (the book's demo)")
    shapes.add_argument("--cell", choices=CELLS, default="rnn")
    shapes.add_argument("--num-steps", type=int, default=35, metavar="N")
    shapes.add_argument("--batch-size", type=int, default=2, metavar="N")
    shapes.add_argument("--hidden", type=int, default=256, metavar="N")
    shapes.add_argument("--layers", type=int, default=1, metavar="N")
    shapes.add_argument("--vocab-size", type=int, default=1027, metavar="N", help="(default 1027, the book's)")
    return parser


SWEEP_EPILOG = """\
search space (--search NAME=SPEC, repeatable; or --space FILE, TOML or JSON, same names):
  lr=1e-4:1e-2:log      float range, log-uniform      dropout=0:0.5     float range, uniform
  hidden=32:512:log     whole-number range            num_steps=16:64:8 whole numbers in steps of 8
  cell=rnn,gru,lstm     a choice                      clip=0,0.1,1      numeric choices (0 = off)
searchable: {searchable}.
Without --space or --search: {default}, less what a flag fixes
(dropout only with 2+ layers).

examples:
  rnn-tui sweep --trials 30 --jobs 2
  rnn-tui sweep --study gru --cell gru --search lr=1e-4:1e-2:log --search hidden=128,256,512
  PGPASSWORD=secret rnn-tui sweep --storage postgresql://class@db.lab:5432/rnn --study lab1 --trials 10
  PGPASSWORD=secret rnn-tui sweep --storage postgresql://class@db.lab:5432/rnn --study lab1 --reap

exit codes: 0 this command's trials ran (worker processes that died were replaced); 1 worker processes kept
dying (replaced 3 × --jobs times) with trials left, or an unexpected error; 2 bad input, a study that does not
match, storage that cannot be opened or is read-only; 3 the database stayed unreachable longer than
--storage-patience; 128+N stopped by signal N (130 ctrl+c, 143 SIGTERM, 129 SIGHUP). A study stores what its
trials share, by meaning: the text read (sha256 of the decoded text), preset, epochs, the held-out settings that
have an effect, the search space (in any order) and fixed settings: a command that differs is refused. Each trial
stores its machine's --grace: another machine's never applies to it.
"""


def add_sweep_parser(commands: Any) -> None:
    from engine.sweep import (
        DEFAULT_EPOCHS,
        DEFAULT_SEARCH,
        DEFAULT_STORAGE_FILE,
        DEFAULT_STUDY,
        DEFAULT_TRIALS,
        GRACE_SECONDS,
        PRUNERS,
        SEARCHABLE,
        STORAGE_ENV,
        STORAGE_PATIENCE,
    )

    sweep = commands.add_parser(
        "sweep",
        help="search settings with Optuna, ranked by held-out perplexity (headless)",
        description="Optuna trials over training settings; every train flag fixes its setting for all trials.",
        epilog=SWEEP_EPILOG.format(searchable=" ".join(SEARCHABLE), default=", ".join(DEFAULT_SEARCH)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_train_arguments(sweep, help_for={"epochs": f"epochs per trial (default {DEFAULT_EPOCHS})"})
    group = sweep.add_argument_group("sweep")
    group.add_argument("--space", metavar="FILE", help="search space file, TOML or JSON (see below)")
    group.add_argument(
        "--search",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help=f"search one setting; repeatable; overrides --space ({', '.join(SEARCHABLE)})",
    )
    group.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help=f"trials this command runs to an end, whatever other commands on the study run (default {DEFAULT_TRIALS} "
        "without --timeout); a trial lost to a killed process or a stop is queued again and not counted",
    )
    group.add_argument("--timeout", type=float, metavar="SECONDS", help="start no trial after this long")
    group.add_argument("--study", default=DEFAULT_STUDY, metavar="NAME", help="study name; an existing one continues")
    group.add_argument(
        "--storage",
        metavar="URL",
        help=f"SQLAlchemy URL (default: ${STORAGE_ENV}, else sqlite file ./{DEFAULT_STORAGE_FILE}); "
        "postgresql://user@host/db for many machines, the password in PGPASSWORD or ~/.pgpass (a URL's password "
        "shows in ps; rnn-tui shows it as ***)",
    )
    group.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes on this machine (default 1)")
    group.add_argument(
        "--pruner", choices=PRUNERS, default="median", help="stop hopeless trials early (default median)"
    )
    group.add_argument("--sampler-seed", type=int, metavar="N", help="seed Optuna's sampler (worker k gets N+k)")
    group.add_argument(
        "--storage-patience",
        type=float,
        default=STORAGE_PATIENCE,
        metavar="SECONDS",
        help=f"wait this long for an unreachable database before giving up (exit 3; default {STORAGE_PATIENCE:g})",
    )
    group.add_argument(
        "--grace",
        type=float,
        default=GRACE_SECONDS,
        metavar="SECONDS",
        help="this machine's trials beat a heartbeat every sixth of this; one silent for this long (stored with "
        "each trial: another machine's --grace never applies) is failed and queued again "
        f"(default {GRACE_SECONDS:g})",
    )
    group.add_argument(
        "--reap",
        action="store_true",
        help="only fail and re-queue the study's trials whose machine stopped sending heartbeats, then exit",
    )


# The run's own flags of add_train_arguments (not settings): dest → option; True/False ones are switches.
RUN_OPTIONS = {
    "corpus_url": "--corpus-url",
    "threads": "--threads",
    "save": "--save",
    "save_best": "--save-best",
    "resume": "--resume",
    "metrics": "--metrics",
    "force": "--force",
    "paused": "--paused",
    "lesson": "--lesson",
    "observations": "--observations",
}


def train_argv(args: argparse.Namespace) -> list[str]:
    """The train flags given in args as command-line words that parse back to them: the settings (to_argv) and the
    run's own flags. For a process started with the same run (a classroom's sessions)."""
    words = to_argv(config_overrides(args))
    for dest, option in RUN_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is True:
            words.append(option)
        elif value is not None and value is not False:
            words += [option, str(value)]
    return words


@dataclass(frozen=True)
class AppOptions:
    """What the app is opened with, typed: the settings given explicitly and the run's own flags."""

    overrides: dict[str, Any] = field(default_factory=dict)  # the settings given (the preset fills the rest)
    resume: str | None = None
    save: str | None = None
    corpus_url: str | None = None
    threads: int | None = None
    paused: bool = False
    lesson: str | None = None  # --lesson: its settings are in overrides already (apply_lesson)
    observations: str | None = None  # --observations: the class's CSV the lesson's observation is appended to

    @property
    def config(self) -> TrainConfig:
        """The settings the first run starts with (checked by parse already)."""
        return preset_config(self.overrides)


def app_options(args: argparse.Namespace) -> AppOptions:
    """The app's options from parsed flags (tui.cli.parse)."""
    return AppOptions(
        overrides=config_overrides(args),
        resume=args.resume,
        save=args.save,
        corpus_url=args.corpus_url,
        threads=args.threads,
        paused=bool(getattr(args, "paused", False)),
        lesson=getattr(args, "lesson", None),
        observations=getattr(args, "observations", None),
    )


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig settings given on the command line (those left out keep their defaults)."""
    return {name: value for name, value in vars(args).items() if name in SETTINGS_BY_NAME and value is not None}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The settings given, over their preset's (see engine.config.preset_config)."""
    return preset_config(config_overrides(args))


def fail(message: str | RnnTuiError, code: int = 2) -> NoReturn:
    """One line on stderr and exit; an engine error's settings are named by their flags (--val-chars)."""
    text = message.worded(flag_name) if isinstance(message, RnnTuiError) else message
    print(f"{PROG}: error: {text}", file=sys.stderr)
    raise SystemExit(code)


def download_bar(done: int, total: int) -> None:
    """A one-line progress bar on stderr for the corpus download."""
    width = 30
    filled = width * done // total if total else 0
    size = f"{done / 1024:,.0f} / {total / 1024:,.0f} KiB" if total else f"{done / 1024:,.0f} KiB"
    end = "\n" if total and done >= total else ""
    print(
        f"\rdownloading the book's corpus [{'#' * filled}{'.' * (width - filled)}] {size}",
        end=end,
        file=sys.stderr,
        flush=True,
    )


# Said under the first samples that come out blank (an early model's greedy samples are spaces).
BLANK_SAMPLES_NOTE = "   (blank so far: the model's likeliest next character is still a space"


def say(text: str, file: Any = None) -> None:
    """Print a line; a terminal gone (SIGHUP, a closed pipe) must not end the run or lose its weights."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=file or sys.stderr, flush=True)


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


def check_outputs(args: argparse.Namespace, corpus: str | None) -> None:
    """Every file the run will write is checked before it trains (before torch is loaded, when called from parse)."""
    from engine.outputs import check_distinct, check_output_target

    save_best = getattr(args, "save_best", None)
    check_distinct({"--save": args.save, "--save-best": save_best, "--metrics": args.metrics})
    # The paths as checked (~ expanded) are the ones written.
    if args.save is not None:
        args.save = str(check_output_target(args.save, "checkpoint", corpus=corpus, force=args.force, flag="--save"))
    if args.metrics is not None:
        args.metrics = str(
            check_output_target(args.metrics, "metrics", corpus=corpus, force=args.force, flag="--metrics")
        )
    if save_best is not None:
        args.save_best = str(
            check_output_target(save_best, "checkpoint", corpus=corpus, force=args.force, flag="--save-best")
        )


def run_headless(args: argparse.Namespace) -> int:
    from engine import events
    from engine.config import stream_length
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
    counting = counting_table(session.corpus, stream_length(session.config))
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


def run_generate(args: argparse.Namespace) -> int:

    from engine import checkpoint as checkpoints
    from engine.convert import resolve_prefix
    from engine.generate import capped_length, check_generation_settings, fresh_generator, generate

    args.length, cap_note = capped_length(args.length)
    if cap_note:
        print(cap_note, file=sys.stderr)
    check_generation_settings(args.length, args.temperature, args.top_k)
    check_seed(args.seed)
    loaded = checkpoints.load(args.checkpoint)
    model = loaded.build_model()
    generator = fresh_generator(args.seed) if args.seed is not None else None
    prefixes = args.prefixes or list(loaded.config.prefixes)
    resolved = []
    for prefix in prefixes:
        text, note = resolve_prefix(prefix, loaded.vocab.idx_to_char)
        if note:
            print(note, file=sys.stderr)
        resolved.append(text)
    for prefix in resolved:
        if args.explain is not None:  # --explain 0 is refused by explain_generation, not ignored
            from engine.explain import explain_generation, format_explanation

            steps = explain_generation(
                model, loaded.vocab, prefix, args.length, args.temperature, args.top_k, args.explain, generator
            )
            print(format_explanation(prefix, steps))
        else:
            print(generate(model, loaded.vocab, prefix, args.length, args.temperature, args.top_k, generator))
    return 0


def run_shapes(args: argparse.Namespace) -> int:
    for name in ("num_steps", "batch_size", "hidden", "layers", "vocab_size"):
        value = getattr(args, name)
        if value < 1:
            raise ConfigError(f"{name.replace('_', '-')} must be a whole number ≥ 1, got {value}")
    from engine.shapes import layer_shapes

    report = layer_shapes(args.cell, args.vocab_size, args.hidden, args.layers, args.num_steps, args.batch_size)
    print(report.book_line)
    width = max(len(t.name) for t in report.tensors)
    for tensor in report.tensors:
        shape = "(" + ", ".join(str(n) for n in tensor.shape) + ")"
        print(f"  {tensor.name:<{width}}  {shape:<16}  {tensor.meaning}")
    return 0


def sweep_spec(args: argparse.Namespace) -> SweepSpec:
    """The SweepSpec of `rnn-tui sweep`'s flags; a bad one raises an RnnTuiError with one line."""
    from engine.sweep import (
        DEFAULT_EPOCHS,
        DEFAULT_TRIALS,
        STORAGE_ENV,
        SweepError,
        SweepSpec,
        build_space,
        resolve_storage,
    )

    if args.resume:
        raise SweepError("--resume does not apply to a sweep: every trial trains from scratch")
    if args.jobs is not None and args.jobs < 1:
        raise SweepError(f"--jobs must be a whole number ≥ 1, got {args.jobs}")
    if args.trials is not None and args.trials < 1:
        raise SweepError(f"--trials must be a whole number ≥ 1, got {args.trials}")
    fixed = config_overrides(args)
    fixed.setdefault("epochs", DEFAULT_EPOCHS)
    if fixed.get("val_chars") == 0:
        raise SweepError("a sweep ranks trials by held-out perplexity: --val-chars 0 turns it off")
    TrainConfig(**fixed)
    check_sweep_outputs(args)
    space = build_space(fixed, args.space, args.search)
    storage, notes = resolve_storage(args.storage or os.environ.get(STORAGE_ENV) or None)
    for note in notes:
        print(note, file=sys.stderr)
    cores = os.cpu_count() or 1
    threads = args.threads or max(1, cores // args.jobs)
    if args.threads and args.threads * args.jobs > cores:
        print(
            f"note: {args.jobs} jobs × {args.threads} threads is more than this machine's {cores} cores",
            file=sys.stderr,
        )
    trials = args.trials if args.trials is not None or args.timeout is not None else DEFAULT_TRIALS
    return SweepSpec(
        fixed=fixed,
        space=space,
        study=args.study,
        storage=storage,
        trials=trials,
        timeout=args.timeout,
        jobs=args.jobs,
        threads=threads,
        pruner=args.pruner,
        sampler_seed=args.sampler_seed,
        corpus_url=args.corpus_url,
        save=args.save,
        metrics=args.metrics,
        storage_patience=args.storage_patience,
        grace=args.grace,
    )


def check_sweep_outputs(args: argparse.Namespace) -> None:
    """--metrics and --save of a sweep, checked as train checks its own before any trial starts: every trial appends
    to the one metrics file, and trial N saves NAME.trial-N.ckpt beside --save's name."""
    from engine.outputs import OutputError, check_distinct, check_output_target
    from engine.sweep import trial_checkpoint

    corpus = _corpus_or_none(args.corpus)
    if args.save is not None:
        if Path(args.save).expanduser().is_dir() or args.save.endswith(os.sep):
            raise OutputError(f"--save {args.save} is a directory; give a file name (trial N saves NAME.trial-N.ckpt)")
        first = trial_checkpoint(args.save, 0)
        check_distinct({"--save": str(first), "--metrics": args.metrics})
        check_output_target(first, "checkpoint", corpus=corpus, force=args.force, flag="--save")
    if args.metrics is not None:
        check_output_target(args.metrics, "metrics", corpus=corpus, force=args.force, flag="--metrics")


def run_sweep_command(args: argparse.Namespace) -> int:
    from engine.sweep import reap_command, run_sweep

    spec = sweep_spec(args)
    if args.reap:
        return reap_command(spec.storage, spec.study, spec.grace, print)
    live = sys.stdout.isatty()
    showing = False

    def out(line: str) -> None:
        nonlocal showing
        if showing:  # the progress line gives way to a lasting one
            sys.stdout.write("\r\x1b[K")
            showing = False
        print(line, flush=True)

    def progress(line: str) -> None:
        nonlocal showing
        if live and line:
            width = max(20, shutil.get_terminal_size().columns - 1)
            sys.stdout.write("\r\x1b[K" + line[:width])
            sys.stdout.flush()
            showing = True

    return run_sweep(spec, out, progress)


def run_command(args: argparse.Namespace) -> int:
    """Run a headless command; a user error becomes one line on stderr and exit code 2."""
    try:
        if args.command == "generate":
            return run_generate(args)
        if args.command == "shapes":
            return run_shapes(args)
        if args.command == "sweep":
            return run_sweep_command(args)
        if args.command == "lessons":
            return run_lessons()
        if args.command == "lab":
            from tui.lab_commands import run_lab

            return run_lab(args)
        return run_headless(args)
    except RnnTuiError as exc:
        fail(exc)
    except KeyboardInterrupt as exc:  # a second stop signal (engine.signals.Interrupted), or ctrl+c while loading
        say(f"{PROG}: interrupted")
        return getattr(exc, "exit_code", 130)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the settings, so a bad value is reported before anything heavy loads."""
    args = build_parser().parse_args(argv)
    apply_lesson(args)
    if args.command in (None, "train", "serve", "sweep"):
        try:
            config_from_args(args)
        except ConfigError as exc:
            fail(exc)
        from engine.limits import check_threads

        try:
            check_threads(args.threads)
            if args.command == "train" and args.headless:
                check_outputs(args, _corpus_or_none(args.corpus))
        except RnnTuiError as exc:
            fail(exc)
    if args.command == "serve":
        check_serve_arguments(args)
    return args


def apply_lesson(args: argparse.Namespace) -> None:
    """--lesson NAME: its settings become the flags not given explicitly (so every front end and a served session's
    command line see them as flags); a bad name is one line and exit 2."""
    name = getattr(args, "lesson", None)
    if getattr(args, "observations", None) is not None and name is None:
        fail("--observations collects a lesson's observations: give --lesson NAME too (rnn-tui lessons lists them)")
    if name is None:
        return
    if args.command == "sweep":
        fail("--lesson applies to train, the app and serve, not to a sweep")
    from engine.lessons import find_lesson

    try:
        lesson = find_lesson(name)
    except ConfigError as exc:
        fail(exc)
    for setting_name, value in lesson.settings.items():
        if getattr(args, setting_name, None) is None:
            setattr(args, setting_name, list(value) if isinstance(value, tuple) else value)


def run_lessons() -> int:
    """`rnn-tui lessons`: each lesson's name, title, question and settings."""
    from engine.lessons import LESSONS

    for lesson in LESSONS:
        print(f"{lesson.name}: {lesson.title}")
        print(f"  {lesson.question}")
        print(f"  settings: {' '.join(lesson.argv())}")
    print("run one: rnn-tui --lesson NAME (the app) or rnn-tui train --headless --lesson NAME")
    return 0


def _corpus_or_none(path: str | None) -> str | None:
    """The corpus file a run would read, if it is found without downloading; its own errors come later."""
    from engine.corpus import find_corpus

    try:
        found = find_corpus(path)
    except RnnTuiError:
        return None
    return str(found) if found is not None else None


def check_serve_arguments(args: argparse.Namespace) -> None:
    if not 0 < args.port < 65536:
        fail(f"port must be between 1 and 65535, got {args.port}")
    if args.max_sessions not in (None, "auto") and args.max_sessions < 1:
        fail(f"max-sessions must be a whole number ≥ 1 or auto, got {args.max_sessions}")
    for flag in ("seat_memory", "seat_disk"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            fail(f"{flag.replace('_', '-')} must be a whole number of MiB ≥ 1, got {getattr(args, flag)}")
    if not (args.idle_minutes >= 0 and math.isfinite(args.idle_minutes)):
        fail(f"idle-minutes must be a number ≥ 0, got {args.idle_minutes:g}")
    if not (args.release_minutes >= 0 and math.isfinite(args.release_minutes)):
        fail(f"release-minutes must be a number ≥ 0, got {args.release_minutes:g}")
    if not (args.first_key_minutes >= 0 and math.isfinite(args.first_key_minutes)):
        fail(f"first-key-minutes must be a number ≥ 0, got {args.first_key_minutes:g}")
    if args.seats_per_address < 0:
        fail(f"seats-per-address must be a whole number ≥ 0, got {args.seats_per_address}")
    if not (args.reload_seconds >= 0 and math.isfinite(args.reload_seconds)):
        fail(f"reload-seconds must be a number ≥ 0, got {args.reload_seconds:g}")
    if args.public_url is not None and not args.public_url.startswith(("http://", "https://", "/")):
        fail(f"public-url must start with http://, https:// or / (a path), got {args.public_url!r}")
    for flag in ("save", "metrics"):
        value = getattr(args, flag)
        if value is not None and (Path(value).is_absolute() or ".." in Path(value).parts or value.startswith("~")):
            fail(f"--{flag} in serve is a file name inside each session's directory, got {value!r}")
