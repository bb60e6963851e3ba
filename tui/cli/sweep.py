"""`rnn-tui sweep`: its parser, the SweepSpec its flags ask for, its run with a live progress line; and the inverse of
the parser, the argv that the app's F12 form starts a sweep with (`sweep_arguments`)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import TrainConfig, to_argv
from tui.cli.flags import add_train_arguments, config_overrides, corpus_or_none

if TYPE_CHECKING:  # the sweep is imported when a sweep command runs
    from engine.sweep import SweepSpec

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


def sweep_arguments(
    fixed: Mapping[str, Any],
    searches: list[str],
    study: str,
    storage: str | None,
    trials: int,
    epochs: int,
    jobs: int,
    threads: int | None = None,
) -> list[str]:
    """The `rnn-tui sweep` arguments for settings fixed from a form (those the space searches are left out)."""
    from engine.sweep import parse_search

    searched = set()
    for text in searches:
        entry = parse_search(text)
        searched.add(entry[0] if isinstance(entry, tuple) else entry.name)
    args = ["sweep", "--study", study, "--trials", str(trials), "--epochs", str(epochs), "--jobs", str(jobs)]
    if storage:
        args += ["--storage", storage]
    if threads:
        args += ["--threads", str(threads)]
    args += to_argv({k: v for k, v in fixed.items() if k not in searched and k != "epochs"})
    for text in searches:
        args += ["--search", text]
    return args


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

    corpus = corpus_or_none(args.corpus)
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
