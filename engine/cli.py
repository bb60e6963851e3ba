"""The command line: argument parsing (no torch import) and the headless commands train, generate, shapes."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, NoReturn

from engine.config import CELLS, DEVICES, OPTIMIZERS, SAMPLINGS, TrainConfig
from engine.errors import ConfigError, RnnTuiError

PROG = "rnn-tui"


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage block) and exits with code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `rnn-tui` (the app) and `rnn-tui train`. Defaults live in TrainConfig, not here."""
    d = TrainConfig()
    group = parser.add_argument_group("corpus")
    group.add_argument(
        "--corpus",
        metavar="PATH",
        help="a UTF-8 .txt or a .zip (default: $RNN_TUI_CORPUS, then data/jaychou_lyrics.txt.zip)",
    )
    group.add_argument(
        "--max-chars", type=int, metavar="N", help=f"keep the first N characters, 0 keeps all (default {d.max_chars})"
    )
    group.add_argument(
        "--corpus-url", metavar="URL", help="where to download the book's corpus from when none is found"
    )
    group = parser.add_argument_group("model")
    group.add_argument("--cell", choices=CELLS, help=f"recurrent cell (default {d.cell})")
    group.add_argument("--layers", type=int, metavar="N", help=f"recurrent layers (default {d.layers})")
    group.add_argument("--hidden", type=int, metavar="N", help=f"hidden units (default {d.hidden})")
    group.add_argument("--dropout", type=float, metavar="P", help=f"dropout between layers (default {d.dropout})")
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, metavar="N", help=f"(default {d.epochs})")
    group.add_argument("--batch-size", type=int, metavar="N", help=f"(default {d.batch_size})")
    group.add_argument("--num-steps", type=int, metavar="N", help=f"characters per sequence (default {d.num_steps})")
    group.add_argument("--sampling", choices=SAMPLINGS, help=f"minibatch sampling (default {d.sampling})")
    group.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {d.optimizer})")
    group.add_argument("--lr", type=float, metavar="LR", help=f"learning rate (default {d.lr:g})")
    group.add_argument(
        "--clip",
        type=float,
        metavar="THETA",
        help=f"clip the gradients' global L2 norm to THETA; 0 = off, as the book in effect (default {d.clip:g})",
    )
    group.add_argument("--seed", type=int, metavar="N", help="make the run reproducible")
    group.add_argument("--device", choices=DEVICES, help=f"(default {d.device})")
    group.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)")
    group = parser.add_argument_group("reports")
    group.add_argument("--pred-period", type=int, metavar="N", help=f"sample every N epochs (default {d.pred_period})")
    group.add_argument("--pred-len", type=int, metavar="N", help=f"characters per sample (default {d.pred_len})")
    group.add_argument(
        "--prefix",
        action="append",
        dest="prefixes",
        metavar="TEXT",
        help="a sample prefix; repeatable (default 分开 and 不分开)",
    )
    group.add_argument(
        "--temperature", type=float, metavar="T", help="sample with temperature T > 0 (default: greedy, as the book)"
    )
    group = parser.add_argument_group("files")
    group.add_argument("--save", metavar="CKPT", help="save a checkpoint here when training ends or is stopped")
    group.add_argument("--resume", metavar="CKPT", help="continue training from a checkpoint")
    group.add_argument("--metrics", metavar="FILE", help="append one JSON object per epoch to FILE")


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
searchable: lr clip dropout hidden layers num_steps batch_size cell optimizer sampling. Without --space or
--search: lr, hidden, layers, dropout (only with 2+ layers), cell, num_steps and clip, less what a flag fixes.

examples:
  rnn-tui sweep --trials 30 --jobs 2
  rnn-tui sweep --study gru --cell gru --search lr=1e-4:1e-2:log --search hidden=128,256,512
  rnn-tui sweep --storage postgresql://class:secret@db.lab:5432/rnn --study lab1 --trials 10
"""


def add_sweep_parser(commands: Any) -> None:
    from engine.space import SEARCHABLE
    from engine.sweep import DEFAULT_EPOCHS, DEFAULT_STORAGE_FILE, DEFAULT_STUDY, DEFAULT_TRIALS, PRUNERS

    sweep = commands.add_parser(
        "sweep",
        help="search settings with Optuna, ranked by held-out perplexity (headless)",
        description="Optuna trials over training settings; every train flag fixes its setting for all trials.",
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_train_arguments(sweep)
    for action in sweep._actions:
        if action.dest == "epochs":
            action.help = f"epochs per trial (default {DEFAULT_EPOCHS})"
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
        "--trials", type=int, metavar="N", help=f"trials to run (default {DEFAULT_TRIALS} without --timeout)"
    )
    group.add_argument("--timeout", type=float, metavar="SECONDS", help="start no trial after this long")
    group.add_argument("--study", default=DEFAULT_STUDY, metavar="NAME", help="study name; an existing one continues")
    group.add_argument(
        "--storage",
        metavar="URL",
        help=f"SQLAlchemy URL (default: sqlite file ./{DEFAULT_STORAGE_FILE}); postgresql://user:pw@host/db "
        "for many machines",
    )
    group.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes on this machine (default 1)")
    group.add_argument(
        "--pruner", choices=PRUNERS, default="median", help="stop hopeless trials early (default median)"
    )
    group.add_argument("--sampler-seed", type=int, metavar="N", help="seed Optuna's sampler (worker k gets N+k)")


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig settings given on the command line (those left out keep their defaults)."""
    names = {f.name for f in fields(TrainConfig)}
    return {name: value for name, value in vars(args).items() if name in names and value is not None}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**config_overrides(args))


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
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


def run_headless(args: argparse.Namespace) -> int:
    from engine import events
    from engine.session import open_session

    overrides = config_overrides(args)
    stop_count = 0

    def printer(event: events.Event) -> None:
        if isinstance(event, events.Started):
            print(
                f"training {session.config.cell} ({session.config.hidden} hidden, {session.config.layers} layer) on "
                f"{event.corpus}: {event.num_chars:,} characters, vocabulary {event.vocab_size:,}, "
                f"{event.batches_per_epoch} batches per epoch, device {event.device}, seed {event.seed}",
                file=sys.stderr,
                flush=True,
            )
        elif isinstance(event, events.EpochEnd):
            if metrics is not None:
                record = {
                    "epoch": event.epoch,
                    "perplexity": event.perplexity,
                    "seconds": event.seconds,
                    "chars": event.chars,
                    "chars_per_second": event.chars_per_second,
                    "lr": event.lr,
                    "clip": event.clip,
                }
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
        elif isinstance(event, events.Samples):
            epoch = session.trainer.state.history[-1]
            print(epoch.book_line(), flush=True)
            for _, text in event.samples:
                print(f" - {text}", flush=True)
        elif isinstance(event, events.Failed):
            print(f"{PROG}: {event.message}", file=sys.stderr, flush=True)
        elif isinstance(event, events.Finished) and event.stopped:
            print(f"stopped after epoch {event.epoch}", file=sys.stderr, flush=True)

    def on_interrupt(signum: int, frame: object) -> None:
        nonlocal stop_count
        stop_count += 1
        if stop_count > 1:
            raise KeyboardInterrupt  # a second ctrl+c: the user really wants out
        print("\nstopping after the current batch (ctrl+c again to quit at once)", file=sys.stderr, flush=True)
        session.trainer.stop()

    session = open_session(
        overrides,
        resume=args.resume,
        corpus_url=args.corpus_url,
        listener=printer,
        threads=args.threads,
        progress=download_bar,
    )
    for note in session.notes:
        print(note, file=sys.stderr)
    trained, wanted = session.trainer.state.epoch, session.config.epochs
    nothing_to_train = trained >= wanted
    if nothing_to_train:  # a resumed run that has done all it was asked: say so rather than print nothing
        print(
            f"nothing to train: the checkpoint has trained {trained} epoch{'s' * (trained != 1)} "
            f"and --epochs is {wanted}; pass --epochs above {trained} to go on",
            file=sys.stderr,
        )
    metrics = open(args.metrics, "a", encoding="utf-8") if args.metrics else None  # noqa: SIM115 - closed below
    previous = signal.signal(signal.SIGINT, on_interrupt)
    failed: list[events.Failed] = []
    original_listener = session.trainer.listener

    def listener(event: events.Event) -> None:
        if isinstance(event, events.Failed):
            failed.append(event)
        original_listener(event)

    session.trainer.listener = listener
    try:
        if not nothing_to_train:
            session.trainer.run()
    finally:
        signal.signal(signal.SIGINT, previous)
        if metrics is not None:
            metrics.close()
    if args.save:
        saved = session.trainer.save(args.save)
        print(f"saved checkpoint {args.save} ({saved.position(session.trainer.batches_per_epoch)})", file=sys.stderr)
    return 1 if failed else 0


def run_generate(args: argparse.Namespace) -> int:

    from engine import checkpoint as checkpoints
    from engine.convert import resolve_prefix
    from engine.generate import capped_length, check_generation_settings, fresh_generator, generate

    args.length, cap_note = capped_length(args.length)
    if cap_note:
        print(cap_note, file=sys.stderr)
    check_generation_settings(args.length, args.temperature, args.top_k)
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


def sweep_spec(args: argparse.Namespace) -> Any:
    """The SweepSpec of `rnn-tui sweep`'s flags; a bad one raises an RnnTuiError with one line."""
    import os

    from engine.space import build_space
    from engine.sweep import DEFAULT_EPOCHS, DEFAULT_TRIALS, SweepError, SweepSpec, resolve_storage

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
    space = build_space(fixed, args.space, args.search)
    storage, notes = resolve_storage(args.storage)
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
    )


def run_sweep_command(args: argparse.Namespace) -> int:
    from engine.sweep import run_sweep

    return run_sweep(sweep_spec(args))


def run_command(args: argparse.Namespace) -> int:
    """Run a headless command; a user error becomes one line on stderr and exit code 2."""
    try:
        if args.command == "generate":
            return run_generate(args)
        if args.command == "shapes":
            return run_shapes(args)
        if args.command == "sweep":
            return run_sweep_command(args)
        return run_headless(args)
    except RnnTuiError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the settings, so a bad value is reported before anything heavy loads."""
    args = build_parser().parse_args(argv)
    if args.command in (None, "train", "sweep"):
        try:
            config_from_args(args)
        except ConfigError as exc:
            fail(str(exc))
        if args.threads is not None and args.threads < 1:
            fail(f"threads must be a whole number ≥ 1, got {args.threads}")
    return args
