"""A sweep's study beyond Optuna's own: opening its storage, and what it measures (its identity).

Storage. resolve_storage turns --storage into a SQLAlchemy URL (a SQLite file by default); open_storage and
open_study fail in one line on a malformed, unreachable or read-only database (not retried: a wrong URL should
fail at once). A URL's password is shown as *** everywhere (shown_url, hide_password).

Identity. A study records what makes its trials comparable, by meaning: the text read (its sha256), the preset,
the settings every trial shares that have an effect, the search space as a set, the epochs and the held-out split.
A command whose settings differ is refused with the first difference named, so one study never ranks lyrics
trials against The Time Machine's. The identity is added only where none is (the database decides), so two
commands creating one study cannot both win. Outages and lost machines: engine.sweep.liveness.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import SETTINGS, preset_config
from engine.errors import RnnTuiError, first_line
from engine.extras import POSTGRES
from engine.sweep.liveness import is_read_only
from engine.sweep.optuna_internals import (
    add_study_attr_once,
    rdb_storage,
    study_id,
)
from engine.sweep.space import Space
from engine.sweep.spec import DEFAULT_STORAGE_FILE, OBJECTIVE_HELDOUT, SweepError, SweepSpec

if TYPE_CHECKING:  # optuna is imported where it is used: the app loads it only when a sweep is read
    import optuna

# Settings that change what a trial measures: a study keeps them fixed, so its trials stay comparable. Where
# the corpus lies (its content is compared by hash), how often samples print, the device, the precision and the
# seed (each trial has its own) do not (Setting.compared).
NOT_COMPARED = tuple(s.name for s in SETTINGS if not s.compared)
HELD_OUT = ("max_chars", "val_chars", "val_fraction", "test_fraction")

# ----- identity -----


def corpus_file(fixed: Mapping[str, Any]) -> Path | None:
    """The corpus file trials read (as engine.session finds it), without reading it; None when it would download."""
    from engine.data.corpus import run_corpus_path

    return run_corpus_path(str(fixed.get("preset", "d2l-zh")), fixed.get("corpus"))


def corpus_meaning(fixed: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(the sha256 of the text the trials read, decoded and preprocessed; the held-out settings that have an effect
    on it). None and every held-out setting when the corpus is not on this machine (it would be downloaded).

    The same text as .txt or .zip has one hash; --val-fraction has no effect when the corpus is longer than
    --max-chars (the val-chars after the training text are held out), and --max-chars none when it is shorter.
    """
    import hashlib

    from engine.data.corpus import read_text, split_text

    max_chars, val_chars, val_fraction = int(config["max_chars"]), int(config["val_chars"]), config["val_fraction"]
    test_fraction = config["test_fraction"]
    every = {"max_chars": max_chars, "val_chars": val_chars, "val_fraction": val_fraction}
    if test_fraction:  # only when on: studies made before the test text compare as they did
        every["test_fraction"] = test_fraction
    path = corpus_file(fixed)
    if path is None or not path.is_file():
        return None, every
    try:
        text = read_text(path, max_chars, str(config["preset"]), extra=val_chars)
    except RnnTuiError:
        return None, every  # an unreadable corpus: every trial says so, with the reason
    train, held_out, _, _ = split_text(text, max_chars, val_chars, val_fraction, test_fraction)
    digest = hashlib.sha256((train + held_out).encode("utf-8")).hexdigest()
    if max_chars and len(text) > max_chars:
        return digest, {"max_chars": max_chars, "val_chars": val_chars}
    # All of it read: its last share is the test text (when on), the share before it held out.
    shares = {"max_chars": 0, "val_fraction": val_fraction}
    if test_fraction:
        shares["test_fraction"] = test_fraction
    return digest, shares


def study_identity(fixed: Mapping[str, Any], space: Space) -> dict[str, Any]:
    """What a study's trials share: corpus, preset, epochs, held-out split, search space and every other setting,
    by meaning: the text read (its sha256), the held-out settings that have an effect, the space as a set of
    entries, and no setting that has no effect at these values (dropout with one layer)."""
    config = preset_config(dict(fixed)).to_dict()
    settings = {**config, **dict(space.fixed)}
    path = corpus_file(fixed)
    shared = {
        k: v for k, v in sorted(settings.items()) if k not in NOT_COMPARED and k not in space.names and k != "preset"
    }
    for name in ("epochs", *HELD_OUT):
        shared.pop(name, None)
    if "layers" not in space.names and settings.get("layers") == 1:
        shared.pop("dropout", None)  # dropout applies between layers: with one, any value trains the same
    text_sha, held_out = corpus_meaning(fixed, config)
    from engine.data.download import sha256_of

    identity = {
        "corpus": path.name if path is not None else "(downloaded)",
        "text_sha256": text_sha,
        "corpus_sha256": sha256_of(path) if path is not None and path.is_file() else None,  # the file's, shown
        "preset": config["preset"],
        "epochs": config["epochs"],
        "held_out": held_out,
        "space": space.describe(),
        "settings": shared,
    }
    result: dict[str, Any] = json.loads(json.dumps(identity))
    return result


def same_space(old: Any, new: Any) -> bool:
    """Two spaces' descriptions name the same entries, in any order."""
    return sorted(str(old).split()) == sorted(str(new).split())


def identity_difference(study: str, existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> str | None:
    """One line naming the first difference between a study's identity and a command's, or None."""

    def refuse(what: str, suffix: str) -> str:
        return (
            f"study {study!r} {what}: its trials would not compare; give another study name, "
            f"e.g. --study {study}-{suffix}"
        )

    if existing.get("preset") != wanted.get("preset"):
        return refuse(f"uses preset {existing.get('preset')}, this command {wanted.get('preset')}", wanted["preset"])
    if existing.get("epochs") != wanted.get("epochs"):
        return refuse(
            f"trains {existing.get('epochs')} epochs a trial, this command {wanted.get('epochs')}",
            f"{wanted.get('epochs')}ep",
        )
    old, new = existing.get("held_out") or {}, wanted.get("held_out") or {}
    if "text_sha256" not in existing:  # a study from before identities by meaning: the settings both name
        old = {k: v for k, v in old.items() if k in new}
        new = {k: v for k, v in new.items() if k in old}
    if old != new:
        name = next(k for k in sorted({*old, *new}) if old.get(k) != new.get(k))
        return refuse(
            f"holds out with {name.replace('_', '-')} {old.get(name, '(no effect)')}, this command "
            f"{new.get(name, '(no effect)')}",
            f"{name.replace('_', '')}{new.get(name, '')}",
        )
    if "text_sha256" in existing:
        differs = existing.get("text_sha256") != wanted.get("text_sha256")
        key = "text_sha256"
    else:  # an older study recorded the file's bytes
        differs = (existing.get("corpus"), existing.get("corpus_sha256")) != (
            wanted.get("corpus"),
            wanted.get("corpus_sha256"),
        )
        key = "corpus_sha256"
    if differs:

        def shown(identity: Mapping[str, Any]) -> str:
            sha = identity.get(key)
            return f"{identity.get('corpus')} (sha256 {sha[:12]}…)" if sha else str(identity.get("corpus"))

        stem = str(wanted.get("corpus", "corpus")).split(".")[0] or "corpus"
        return refuse(f"trains on {shown(existing)}, this command on {shown(wanted)}", stem)
    if not same_space(existing.get("space"), wanted.get("space")):
        return refuse(f"searches {existing.get('space')}, this command {wanted.get('space')}", "space2")
    old, new = existing.get("settings") or {}, wanted.get("settings") or {}
    differ = [k for k in sorted({*old, *new}) if old.get(k) != new.get(k)]
    if "text_sha256" not in existing:  # older studies kept dropout with one layer
        differ = [k for k in differ if not (k == "dropout" and (new.get("layers", old.get("layers")) == 1))]
    if differ:
        changes = ", ".join(f"{k.replace('_', '-')} {old.get(k, '-')}→{new.get(k, '-')}" for k in differ)
        first = differ[0]
        return refuse(f"was run with other fixed settings ({changes})", f"{first.replace('_', '')}{new.get(first, '')}")
    return None


# ----- storage -----


def resolve_storage(url: str | None, cwd: Path | None = None) -> tuple[str, list[str]]:
    """The SQLAlchemy URL to use and notes for the user. None: a SQLite file in the working directory.

    postgresql:// and postgres:// are rewritten to postgresql+psycopg:// (the psycopg 3 driver, rnn-tui's
    [postgres] extra; SQLAlchemy's plain postgresql:// means psycopg2, which rnn-tui does not install).
    """
    notes: list[str] = []
    if not url:
        path = (cwd or Path.cwd()) / DEFAULT_STORAGE_FILE
        return f"sqlite:///{path}", notes
    url = url.strip()
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            url = "postgresql+psycopg://" + url[len(plain) :]
            notes.append(f"storage: {plain} read as postgresql+psycopg:// (the psycopg 3 driver)")
    return url, notes


def url_password(url: str) -> str:
    """The password a storage URL carries ("" for none): the text between the user's ':' and the last '@' of
    what follows the scheme, as typed (an unencoded '@' in it included), else a password= query parameter."""
    _scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo = rest[: rest.rfind("@")]
        if ":" in userinfo and "/" not in userinfo.split(":", 1)[0]:
            return userinfo.split(":", 1)[1]
    match = re.search(r"[?&]password=([^&#]*)", url)
    return match.group(1) if match else ""


def hide_password(text: str, url: str) -> str:
    """text (a message, a URL) with the URL's password, and every piece of it an unencoded '@' would have split
    off, shown as ***."""
    secret = url_password(url)
    if not secret:
        return text
    pieces = sorted({secret, *(part for part in secret.split("@") if len(part) >= 3)}, key=len, reverse=True)
    for piece in pieces:
        text = text.replace(piece, "***")
    return text


def shown_url(url: str) -> str:
    """The URL as messages and screens show it: its password as ***, whether or not the URL parses."""
    return hide_password(url, url)


def open_storage(url: str, write: bool = True) -> optuna.storages.RDBStorage:
    """An Optuna RDBStorage on url with heartbeats; a malformed, unreachable or (write) read-only one is a one-line
    SweepError. Opening is not retried: a wrong URL should fail at once, an outage later is waited out."""
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    quiet_optuna()
    import optuna

    secret = url_password(url)
    if "@" in secret:
        raise SweepError(
            f"malformed storage URL {shown_url(url)!r}: its password holds an unencoded '@'; write it as %40, or "
            "leave the password out of the URL and set PGPASSWORD (or ~/.pgpass)"
        )
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        raise SweepError(f"malformed storage URL {shown_url(url)!r}: {hide_password(first_line(exc), url)}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        uri = database.startswith("file:")  # sqlite:///file:PATH?mode=ro&uri=true: SQLite opens it as a URI
        if database and database != ":memory:" and not uri and not Path(database).expanduser().parent.is_dir():
            raise SweepError(f"storage {shown_url(url)}: the folder {Path(database).parent} does not exist")
        if write and database and database != ":memory:" and not uri:
            path = Path(database).expanduser()
            if (path.exists() and not os.access(path, os.W_OK)) or not os.access(path.parent, os.W_OK):
                raise SweepError(read_only_message(url))
        connect_args: dict[str, Any] = {"timeout": 60}  # workers of one machine take turns on the file's lock
    elif backend == "postgresql":
        connect_args = {"connect_timeout": 10}
    else:
        connect_args = {}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url,
                # No heartbeat_interval: Optuna's heartbeat thread dies on the first storage error, and its stale
                # check judges every trial by the reader's grace. Heartbeat and Reaper (above) do both.
                engine_kwargs={"connect_args": connect_args, "pool_pre_ping": True},
            )
        except ImportError as exc:
            missing = POSTGRES.missing(f"storage {shown_url(url)}") if backend == "postgresql" else None
            message = missing or f"storage {shown_url(url)}: its database driver is not installed ({exc})"
            raise SweepError(message) from None
        except sqlalchemy.exc.NoSuchModuleError:
            raise SweepError(f"storage {shown_url(url)}: unknown database kind {parsed.drivername!r}") from None
        except sqlalchemy.exc.IntegrityError:
            # Another process created the same fresh database's tables at the same moment: they exist now.
            time.sleep(0.2 * (attempt + 1))
        except Exception as exc:  # OperationalError (unreachable, bad password), ArgumentError...
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            first = reason[0] if reason else type(exc).__name__
            if isinstance(exc, sqlalchemy.exc.ProgrammingError | sqlalchemy.exc.OperationalError) and (
                "already exists" in first
            ):
                # The same race met elsewhere: PostgreSQL at its enum types ('type "studydirection" already
                # exists', a ProgrammingError), SQLite at a table ('table studies already exists', an
                # OperationalError: 7 opens in 24 refused, 3 commands at a time on a fresh file).
                time.sleep(0.2 * (attempt + 1))
                continue
            if "readonly" in first:
                raise SweepError(read_only_message(url)) from None
            raise SweepError(f"cannot open storage {shown_url(url)}: {hide_password(first, url)}") from None
    raise SweepError(f"cannot open storage {shown_url(url)}: its tables could not be created")


def read_only_message(url: str) -> str:
    return (
        f"storage {shown_url(url)} is read-only: a sweep records every trial there; give a writable file "
        "(or copy it) with --storage"
    )


def quiet_optuna() -> None:
    """Optuna logs every trial and warns that heartbeats are experimental: the monitor prints its own lines."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # its per-trial warnings would repeat our lines with tracebacks
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Trials are run by ask and tell (each storage call waits out an outage), with our own Heartbeat.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 8), reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    # The median of earlier trials at the same epoch, after a warm-up: GRU and LSTM start slower than a plain
    # RNN, and a pruner that judged them at epoch 1 would keep only fast starters.
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=max(1, epochs // 5))


def make_sampler(seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    # constant_liar: parallel workers do not all pick the same point while earlier trials still run.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def compared_settings(fixed: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(fixed.items()) if k not in NOT_COMPARED}


def open_study(
    spec: SweepSpec, storage: optuna.storages.BaseStorage, worker: int = 0, check: bool = False
) -> optuna.Study:
    """Create the study, or load it when it exists; check: a study whose identity differs is refused."""
    try:
        return _open_study(spec, storage, worker, check)
    except Exception as exc:
        if is_read_only(exc):  # SQLite's "attempt to write a readonly database"
            raise SweepError(read_only_message(spec.storage)) from None
        raise


def _open_study(spec: SweepSpec, storage: optuna.storages.BaseStorage, worker: int, check: bool) -> optuna.Study:
    import optuna

    sampler_seed = None if spec.sampler_seed is None else spec.sampler_seed + worker
    study = optuna.create_study(
        study_name=spec.study,
        storage=storage,
        direction="minimize",
        load_if_exists=True,
        sampler=make_sampler(sampler_seed),
        pruner=make_pruner(spec.pruner, spec.fixed["epochs"]),
    )
    if not check:
        return study
    wanted = spec.identity or study_identity(spec.fixed, spec.space)
    existing = study.user_attrs.get("identity")
    if existing is None:
        # A study made before identities were stored knows only the flags given: those must match.
        old = study.user_attrs.get("fixed")
        flags = json.loads(json.dumps(compared_settings(spec.fixed)))
        if old is not None and {k: v for k, v in old.items() if k != "seed"} != flags:
            differ = sorted(set(old) ^ set(flags) | {k for k in old if k in flags and old[k] != flags[k]})
            shown = ", ".join(
                f"{k.replace('_', '-')} {old.get(k, 'default')}→{flags.get(k, 'default')}" for k in differ
            )
            raise SweepError(
                f"study {spec.study!r} was run with other fixed settings ({shown}); its trials would not compare: "
                "give another --study name, or the same flags"
            )
        # Added only where none is (the database's unique key decides): of two commands creating one study at the
        # same moment, one identity is stored and the other command compares itself with it below.
        if add_study_attr_once(rdb_storage(study), study_id(study), "identity", wanted):
            study.set_user_attr("fixed", flags)
            study.set_user_attr("space", spec.space.describe())
            study.set_user_attr("objective", OBJECTIVE_HELDOUT)
            return study
        existing = study.user_attrs.get("identity")
    difference = identity_difference(spec.study, existing or {}, wanted)
    if difference:
        raise SweepError(difference)
    return study


def load_study_of(
    storage_url: str, study_name: str, write: bool = False, storage: optuna.storages.BaseStorage | None = None
) -> optuna.Study:
    """A study to read (the app, --reap); a missing one is a one-line SweepError naming those there. storage: one
    already open on storage_url (a viewer reads through one database engine, not a new one each time)."""
    import optuna

    storage = storage or open_storage(storage_url, write=write)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        there = f"; studies there: {', '.join(names)}" if names else "; it has no studies yet"
        raise SweepError(f"no study {study_name!r} in {shown_url(storage_url)}{there}") from None
