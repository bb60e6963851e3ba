"""`rnn-tui sweep`: an Optuna study over training settings, ranked by held-out perplexity.

Modules by concern, each importing only those before it (and none Optuna or torch at import time):
space (what is searched), spec (what a sweep is asked to do, its exit codes), optuna_internals (every use of
Optuna's private internals, checked by tests/test_sweep_internals.py), liveness (outages, heartbeats, lost trials
failed by their own grace), study (storage, identity), trials (a study read back), worker (a trial's process),
monitor (the command's process watching its workers). What the front ends and tests use is exported here.
"""

from engine.sweep.monitor import reap_command, run_sweep
from engine.sweep.space import (
    DEFAULT_SEARCH,
    SEARCHABLE,
    Param,
    Space,
    build_space,
    default_space,
    parse_search,
    read_space_file,
)
from engine.sweep.spec import (
    DEFAULT_EPOCHS,
    DEFAULT_STORAGE_FILE,
    DEFAULT_STUDY,
    DEFAULT_TRIALS,
    EXIT_LOST,
    EXIT_OK,
    EXIT_STORAGE,
    EXIT_USAGE,
    GRACE_SECONDS,
    OBJECTIVE_FALLBACK,
    OBJECTIVE_HELDOUT,
    PRUNERS,
    STORAGE_ENV,
    STORAGE_PATIENCE,
    SweepError,
    SweepSpec,
)
from engine.sweep.study import (
    NOT_COMPARED,
    make_pruner,
    open_storage,
    resolve_storage,
    shown_url,
)
from engine.sweep.trials import (
    CSV_COLUMNS,
    StudyReader,
    TrialRow,
    best_row,
    param_importances,
    read_trials,
    train_command,
    trials_csv,
)
from engine.sweep.worker import trial_checkpoint, trial_command_overrides

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_EPOCHS",
    "DEFAULT_SEARCH",
    "DEFAULT_STORAGE_FILE",
    "DEFAULT_STUDY",
    "DEFAULT_TRIALS",
    "EXIT_LOST",
    "EXIT_OK",
    "EXIT_STORAGE",
    "EXIT_USAGE",
    "GRACE_SECONDS",
    "NOT_COMPARED",
    "OBJECTIVE_FALLBACK",
    "OBJECTIVE_HELDOUT",
    "PRUNERS",
    "SEARCHABLE",
    "STORAGE_ENV",
    "STORAGE_PATIENCE",
    "Param",
    "Space",
    "StudyReader",
    "SweepError",
    "SweepSpec",
    "TrialRow",
    "best_row",
    "build_space",
    "default_space",
    "make_pruner",
    "open_storage",
    "param_importances",
    "parse_search",
    "read_space_file",
    "read_trials",
    "reap_command",
    "resolve_storage",
    "run_sweep",
    "shown_url",
    "train_command",
    "trial_checkpoint",
    "trial_command_overrides",
    "trials_csv",
]
